"""Statistics for comparing arms: procedure-level inference with seeds as the unit and item-level
inference with items as the unit (inference), and what an arm is and how arms are labelled (arms).
Pure numpy/scipy on numbers and configs: may import the configuration and the bottom layer only.
"""
