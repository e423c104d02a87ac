"""The demo sweep behind `make run`: placements (and perturbations of `after`) on the counting task.

    cotdistill demo --placements none,before,after --perturbations none,shuffle --steps 1000

Trains the built-in tiny student once per arm on the same examples of the built-in counting task
(configs/count-demo.yaml) and prints accuracy with its 95% bootstrap interval, plus the paired
difference of each arm against label-only with McNemar's exact test. Finished arms are reused.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

from cotdistill.config import load_config
from cotdistill.runner import default_run_dir, run
from cotdistill.stats import mcnemar_exact, paired_bootstrap_diff

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "count-demo.yaml"


def demo_sweep(placements: list[str], perturbations: list[str], *, steps: int, seed: int,
               echo: Callable[[str], None] = print) -> list[dict]:
    arms = [(p, "none") for p in placements if p != "after"]
    arms += [("after", k) for k in perturbations] if "after" in placements else []
    rows = []
    for placement, kind in arms:
        cfg = load_config(DEMO_CONFIG if DEMO_CONFIG.exists() else None,
                          [f"placement={placement}", f"perturbation.kind={kind}",
                           f"train.steps={steps}", f"seed={seed}"])
        out = default_run_dir(cfg)
        t0 = time.perf_counter()
        if (out / "summary.json").exists():
            summary = json.loads((out / "summary.json").read_text())
        else:
            echo(f"training {placement}/{kind} ({steps} steps) → {out}")
            summary = run(cfg, out)
        correct = [json.loads(line)["correct"] for line in open(out / "predictions.jsonl")]
        rows.append({"placement": placement, "perturbation": kind, "summary": summary,
                     "correct": correct, "seconds": time.perf_counter() - t0})
    echo(format_table(rows))
    return rows


def format_table(rows: list[dict]) -> str:
    base = next((r for r in rows if r["placement"] == "none"), None)
    lines = [f"{'placement':<10} {'perturbation':<13} {'accuracy':>8}  {'95% CI':<16} "
             f"{'vs label-only':<24} {'McNemar p':>9}"]
    for r in rows:
        s = r["summary"]
        diff = p = ""
        if base is not None and r is not base:
            d = paired_bootstrap_diff(r["correct"], base["correct"])
            diff = f"{d.estimate:+.3f} [{d.low:+.3f}, {d.high:+.3f}]"
            p = f"{mcnemar_exact(r['correct'], base['correct']).p_value:.3g}"
        lines.append(f"{r['placement']:<10} {r['perturbation']:<13} {s['accuracy']:>8.3f}  "
                     f"[{s['accuracy_low']:.3f}, {s['accuracy_high']:.3f}]  {diff:<24} {p:>9}")
    n = rows[0]["summary"]["n"] if rows else 0
    return "\n".join(lines) + f"\n({n} test examples of the counting task; tiny student; run folders under runs/)"
