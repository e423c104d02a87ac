"""Which training-curve values a run records, and when: one rule for the run folder's metrics.jsonl
(cotdistill.run) and the job system's metric rows (worker.execution).

    curve_values(event, log_every=10)   # {"loss": 2.1, "label_loss": 0.7, ..., "epoch": 0.5} or {}

`loss` is the total training loss (rationale tokens included, weighted by rationale_weight), so it
means different things for different placements; `label_loss` is the mean cross-entropy of the label
tokens alone and compares across placements; `rationale_loss` that of the rationale's tokens (absent
for `none`, or rationale_weight 0). `tokens` counts the real (non-padding) training tokens seen so
far, `epoch` the passes over the training set; `val_accuracy` the accuracy on the fixed validation
subset (eval.every, eval.val_size). Pure Python: importing it loads no torch.
"""

from __future__ import annotations

import math

LOGGED = ("loss", "label_loss", "rationale_loss", "lr", "tokens_per_s", "tokens", "epoch")
"""Curve values of a training event recorded every `train.log_every` steps (and at the last step)."""
VALIDATION = ("val_accuracy",)
"""Values of a validation step; `tokens` and `epoch` come with them, so every row has its x-axes."""


def curve_values(event: dict, log_every: int) -> dict[str, float]:
    """The training-curve values to record for one training event (empty: nothing at this step):
    LOGGED on logging steps, VALIDATION (with tokens and epoch) on validation steps; values that are
    missing or not finite are left out. The runner's metrics.jsonl and the worker's metric rows both
    use this rule."""
    names: list[str] = []
    if event["step"] % max(1, log_every) == 0 or event["step"] == event["total"]:
        names += LOGGED
    if any(event.get(k) is not None for k in VALIDATION):
        names += [k for k in (*VALIDATION, "tokens", "epoch") if k not in names]
    out = {}
    for name in names:
        value = event.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[name] = float(value)
    return out
