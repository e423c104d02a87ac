"""cotdistill: the science library of the CoT-distillation workbench.

Packages by concern, in layers, lowest first (a module imports only its own layer and those before
it; tests/test_layers.py holds the order): errors and the leaf utilities (names, paths, files,
safe_load) with the `Example` type (examples); sequences/ (placements and loss masks, perturbations);
config; data/ (sources, data report, rationale set store, releases) with fingerprint; students/;
stats/; train/; evaluate/; attribution; teachers/; report; the run entry point (`cotdistill.run`) with
preview, estimate and throughput; studies/; cli/. Knows nothing of the worker, the database or the
app. This root exports DataError, Example and RESULTS_VERSION and imports only errors and examples.
"""

from cotdistill.errors import DataError
from cotdistill.examples import Example

__all__ = ["DataError", "Example", "RESULTS_VERSION"]

RESULTS_VERSION = 5
"""Bump on any change that alters numbers for an unchanged config. Part of every config hash, and
recorded in each run's config.yaml and summary.json: a run of an older version is never reused
silently (`cotdistill run` and `cotdistill submit` rerun it, unless given --reuse-old).
2: BOS, one logits path, mask/filler units, forced answers, seeded n_train/n_test sampling,
   grad x input key tokens by magnitude (issue 11).
4: training packs sequences by default where the student supports it (train.packing; the loss is
   the padded one to rounding, not bit for bit) (issue 15).
5: a question is its stem with its choices: n_train/n_test draw questions, a test split keeps one row
   per question, placeholder rationales (`nan`, one word) are dropped from imported files by default,
   and the accuracy interval resamples questions where one repeats (issue 23)."""
__version__ = "0.1.0"
