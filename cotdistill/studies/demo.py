"""The demo sweep behind `make demo`: placements (and perturbations of `after`) on the counting task.

    cotdistill demo --placements none,before,after --perturbations none,shuffle --steps 1000 --seeds 0,1

Trains the built-in tiny student once per arm and seed on the same examples of the built-in counting
task (configs/count-demo.yaml) and prints each arm's accuracy (mean over seeds), then its difference
to label-only: first the training procedures, seeds as the unit (paired t over the seed pairs: an
estimate, a 95% interval and p; "needs ≥ 2 seeds" with one seed), then the test set (these trained
models on these items: item-cluster bootstrap interval and exact sign-flip p, McNemar's with one seed).
Finished runs are reused.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from cotdistill.config import load_config
from cotdistill.run import default_run_dir, run
from cotdistill.stats.inference import NEEDS_SEEDS, procedure_diff, seed_paired_diff

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "count-demo.yaml"
DEFAULT_SEEDS = (0, 1)


def demo_sweep(placements: list[str], perturbations: list[str], *, steps: int, seeds: list[int] = DEFAULT_SEEDS,
               echo: Callable[[str], None] = print) -> list[dict]:
    """Train (or reuse) every arm on every seed; print and return one row per arm with its seeds'
    summaries and per-item correctness."""
    arms = [(p, "none") for p in placements if p != "after"]
    arms += [("after", k) for k in perturbations] if "after" in placements else []
    rows = []
    for placement, kind in arms:
        row = {"placement": placement, "perturbation": kind, "seeds": list(seeds), "summaries": [], "correct": []}
        t0 = time.perf_counter()
        for seed in seeds:
            cfg = load_config(DEMO_CONFIG if DEMO_CONFIG.exists() else None,
                              [f"placement={placement}", f"perturbation.kind={kind}",
                               f"train.steps={steps}", f"seed={seed}"])
            out = default_run_dir(cfg)
            if (out / "summary.json").exists():
                summary = json.loads((out / "summary.json").read_text())
            else:
                echo(f"training {placement}/{kind} seed {seed} ({steps} steps) → {out}")
                summary = run(cfg, out)
            row["summaries"].append(summary)
            row["correct"].append([json.loads(line)["correct"] for line in open(out / "predictions.jsonl")])
        row["seconds"] = time.perf_counter() - t0
        rows.append(row)
    echo(format_table(rows))
    return rows


def format_table(rows: list[dict]) -> str:
    """Accuracy per arm (mean over seeds), then against label-only: the procedure (seeds as the unit)
    and the test set (these models, these items)."""
    base = next((r for r in rows if r["placement"] == "none"), None)
    lines = [f"{'placement':<10} {'perturbation':<13} {'accuracy':>8}  {'vs label-only: procedure, seeds as the unit':<44} "
             f"{'test set (these models, these items)':<36}"]
    for r in rows:
        accuracy = sum(s["accuracy"] for s in r["summaries"]) / len(r["summaries"])
        procedure = test_set = ""
        if base is not None and r is not base:
            d = seed_paired_diff(r["correct"], base["correct"])
            p = procedure_diff(d.per_pair_diff)
            procedure = (f"{p.estimate:+.3f}, {NEEDS_SEEDS}" if p.p_value is None else
                         f"{p.estimate:+.3f} [{p.low:+.3f}, {p.high:+.3f}] p={p.p_value:.3g}")
            test_set = f"[{d.interval.low:+.3f}, {d.interval.high:+.3f}] p={d.p_value:.3g}"
        lines.append(f"{r['placement']:<10} {r['perturbation']:<13} {accuracy:>8.3f}  {procedure:<44} {test_set:<36}")
    n = rows[0]["summaries"][0]["n"] if rows else 0
    k = len(rows[0]["seeds"]) if rows else 0
    return "\n".join(lines) + (f"\n({n} test examples of the counting task; tiny student; {k} seed(s) per arm; run "
                               f"folders under runs/)")
