"""Training sequences: where the rationale goes (placements: token ids and the loss mask built segment
by segment) and what is done to it first (perturbations: registry of pure functions on units). Owns
cotdistill.sequences.placements and cotdistill.sequences.perturbations. Pure functions on examples,
tokenizers and lists: may import only the bottom layer (errors, examples and the leaf utilities);
the configuration imports this package, so nothing here imports config or anything above it.
"""
