"""Ready-made experiments beside the first one: real data sized for the machine.

    from cotdistill.studies.presets import PRESETS, preset_configs
    PRESETS["cqa-smollm2-cpu"]["matrix"]        # {base, factors}, as an experiment matrix takes them
    preset_configs("cqa-smollm2-cpu")          # one run config (a mapping) per placement, seed 0

The Launch page offers each preset as a button (next to cotdistill.studies.testbed's, if any) that fills the
form; `configs/` holds the same settings as files (tests/test_presets.py keeps them equal), for
`cotdistill run` and `cotdistill submit`.

`cqa-smollm2-cpu`: CommonsenseQA with PaLM-540B rationales × SmolLM2-135M (offline, pretrained), label
only, rationale before and rationale after the label, one seed, on a sample of the data small enough
for a 2-core CPU: each run is sized to at most about 15 minutes on one core (the embedded stack runs
two runs at once on a 2-core machine, one core each: the three take about 20 minutes), measured by
bench/cpu_preset.py (README "A CPU preset for real data"). What makes it fit: one scoring mode
(eval.all_modes false), no validation during training, 300 test questions, sequences cut at 160 tokens. It shows the pipeline on real data with
a real pretrained student; one seed gives each arm's accuracy, not the procedure-level verdict (that
needs at least 2 seeds per arm: add seeds, at the same cost per run).
"""

from __future__ import annotations

import copy
from typing import Any

CQA_CPU_BASE: dict[str, Any] = {
    "data": {"n_train": 800, "n_test": 300},
    "train": {"steps": 100, "batch_size": 8, "lr": 0.0001, "warmup_steps": 10, "log_every": 10},
    "eval": {"mode": "auto", "batch_size": 16, "max_new_tokens": 96, "all_modes": False},
}
"""The CPU-sized settings: 100 steps of 8 sequences (the 800 sampled training questions seen once),
evaluation on 300 test questions (generation for `before`, at most 96 new tokens), letter scoring
only, validation off. Measured (bench/cpu_preset.py, 2026-12-07, CPU time of one thread, two passes):
`before` 800-890 s (6.1-6.8 s a step, 0.62-0.70 s a generated answer), `after` about 650 s (6.0 s a
step, 0.17 s a scored question), label-only 430-580 s (3.8-5.1 s a step)."""

PRESETS: dict[str, dict[str, Any]] = {
    "cqa-smollm2-cpu": {
        "title": "CommonsenseQA × SmolLM2-135M on a CPU",
        "shows": "label-only, rationale before and rationale after the label, on real data with a real "
                 "pretrained student (one seed: accuracies, not yet a verdict)",
        "expected": "≤ 15 min a run, 20 min on 2 cores",
        "matrix": {
            "base": CQA_CPU_BASE,
            "factors": {"data.name": ["commonsenseqa-dsbs"],
                        "student": [{"name": "smollm2-135m", "max_length": 160}],
                        "placement": ["none", "before", "after"],
                        "perturbation": [{"kind": "none"}],
                        "seed": [0]},
        },
    },
}
"""name → {title, shows, expected, matrix}: what the Launch page offers as a one-click preset."""


def preset_matrix(name: str, experiment: str | None = None) -> dict:
    """The preset as a matrix {name, base, factors} (a copy; `experiment` names it, default the preset)."""
    found = copy.deepcopy(PRESETS[name]["matrix"])
    return {"name": experiment or name, **found}


def preset_configs(name: str) -> dict[str, dict]:
    """placement → the run config (a mapping) of the preset's first cell of each placement."""
    m = PRESETS[name]["matrix"]
    out = {}
    for placement in m["factors"]["placement"]:
        cfg = copy.deepcopy(m["base"])
        cfg["data"] = {"name": m["factors"]["data.name"][0], **cfg["data"]}
        cfg.update(student=copy.deepcopy(m["factors"]["student"][0]), placement=placement,
                   perturbation=copy.deepcopy(m["factors"]["perturbation"][0]), seed=m["factors"]["seed"][0])
        out[placement] = cfg
    return out
