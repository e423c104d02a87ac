"""cotdistill: the science library of the CoT-distillation workbench.

Data (`cotdistill.data`), placements and loss masks (`cotdistill.placements`), perturbations
(`cotdistill.perturbations`), students (`cotdistill.students`), training (`cotdistill.training`),
evaluation (`cotdistill.evaluation`), statistics (`cotdistill.stats`) and the run entry point
(`cotdistill.runner`). Knows nothing of the worker, the database or the app.
"""

from cotdistill.examples import DataError, Example

__all__ = ["DataError", "Example"]
__version__ = "0.1.0"
