"""The testbed with known answers: the first experiment the app proposes, and the control suite.

    cotdistill selftest                       # the control suite, trained here, printed as a table
    plan = selftest_plan(seeds=[0, 1, 2])     # the runs it needs, as run configs
    verdicts = judge(paired_results, leak)    # what was found against what the construction implies

The testbed is the built-in counting task (cotdistill/data/counting.py): a seeded world gives each
made-up object a colour; a question lists three objects and asks how many have one colour; the
rationale recalls each object's colour, which the question does not say. What each arm must show
follows from that construction, not from any result:

- **positive control** — `after` with the true rationale supervises every fact the count needs, so
  it must beat label-only, significantly, by the across-seeds paired test Compare uses;
- **negative controls** — random facts (`fact_noise: 1`: the rationale keeps its form, every colour it
  states is drawn at random) and `filler` (dots) carry no fact, so neither may beat label-only
  significantly. `mismatch` is *not* a negative control on this task: the world's facts are shared by
  every question, so another question's rationale still states true colours (measured: 0.79 against
  label-only's 0.40 on one seed at 300 steps) — see README "The first experiment";
- **leak control** — with `leak_rate`, rationales end in "So the answer is (x)."; the data report
  must flag it, and must flag nothing on the clean task.

The suite validates the tool (does the pipeline detect what it should?); it proves nothing about the
study's claims on real data. The plan and the judging are pure functions; `run_selftest` trains the
cells in this process (the CLI), the app submits `selftest_matrix` to the workers and judges the
finished runs with the same functions.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Iterable

ALPHA = 0.05
"""Significance level of every control (two-sided across-seeds sign-flip test)."""

TESTBED_DATA: dict[str, Any] = {
    "name": "synthetic-count",
    "options": {"n_train": 1000, "n_test": 300, "n_items": 3, "n_objects": 40, "n_colours": 2, "seed": 0},
}
"""Three items, two colours, 40 objects: label-only stays at the majority answer at this budget,
while a rationale after the label teaches the facts (measured: README "The first experiment")."""

TESTBED_BASE: dict[str, Any] = {
    "data": TESTBED_DATA,
    "student": {"name": "tiny", "size": "tiny", "vocab_size": 512, "max_length": 128},
    "train": {"steps": 500, "batch_size": 32, "lr": 0.003, "warmup_steps": 30},
    "eval": {"mode": "auto", "batch_size": 100, "every": 100, "val_size": 64},
}

FIRST_RUN_STEPS = 300
"""Steps of each default run: the matrix finishes in under 5 minutes on 2 CPU cores (bench/first_run.py,
285 s measured) with `after` still significantly above label-only over 3 seeds (+0.12 at 300 steps;
the self-test keeps TESTBED_BASE's 500 for per-control margin)."""
FIRST_RUN: dict[str, Any] = {
    "base": {**TESTBED_BASE, "train": {**TESTBED_BASE["train"], "steps": FIRST_RUN_STEPS}},
    "placements": ["none", "after"],
    "perturbations": [{"kind": "none"}, {"kind": "filler", "level": "token", "params": {"length": "same"}}],
    "seeds": [0, 1, 2],
}
"""The Launch page's default matrix: label-only, rationale after the label, and filler after the label,
three seeds, with validation accuracy every 100 steps on 64 test items (a curve on Compare). `after` vs `none` is the difference that should be real; `after · filler` vs `none` the
one that should not (placement `none` ignores the perturbation, so its filler cell is the same run)."""

LEAK_RATE = 0.5
"""The leak control's share of rationales that state the answer outright."""


@dataclass(frozen=True)
class Control:
    name: str
    placement: str
    perturbation: str
    expect: str
    """'better': significantly above label-only; 'not better': not significantly above it."""
    why: str
    fact_noise: float = 0.0
    """The dataset's `fact_noise` for this arm (1.0: every stated colour random)."""

    @property
    def arm(self) -> tuple[str, str, float]:
        return (self.placement, self.perturbation, self.fact_noise)


CONTROLS: tuple[Control, ...] = (
    Control("positive", "after", "none", "better",
            "the rationale states every fact the count needs"),
    Control("negative: random facts", "after", "none", "not better",
            "every colour the rationale states is drawn at random", fact_noise=1.0),
    Control("negative: filler", "after", "filler", "not better",
            "filler carries no fact at all"),
)
BASELINE = ("none", "none", 0.0)


def arm_config(placement: str, perturbation: str, seed: int, *, steps: int | None = None,
               base: dict | None = None, fact_noise: float = 0.0) -> dict:
    """The run config (as a mapping) of one arm and seed of the testbed."""
    cfg = copy.deepcopy(base or TESTBED_BASE)
    cfg.update(placement=placement, perturbation={"kind": perturbation}, seed=seed)
    if fact_noise:
        cfg["data"]["options"]["fact_noise"] = fact_noise
    if steps is not None:
        cfg["train"]["steps"] = steps
    cfg["name"] = "selftest"
    return cfg


def selftest_arms() -> list[tuple[str, str, float]]:
    """(placement, perturbation, fact_noise) of every arm the suite trains: the baseline first."""
    return [BASELINE] + [c.arm for c in CONTROLS]


def selftest_plan(seeds: Iterable[int], *, steps: int | None = None) -> list[dict]:
    """Every run config the suite needs, baseline first, seed-major within each arm."""
    return [arm_config(p, k, s, steps=steps, fact_noise=n) for p, k, n in selftest_arms() for s in seeds]


def selftest_matrix(name: str, seeds: Iterable[int], *, steps: int | None = None) -> dict:
    """The suite as an experiment matrix (the app submits it to the workers)."""
    base = copy.deepcopy(TESTBED_BASE)
    if steps is not None:
        base["train"]["steps"] = steps
    variants = [{"placement": p, "perturbation": {"kind": k}, "data.options.fact_noise": n}
                for p, k, n in selftest_arms()]
    return {"name": name, "base": base, "factors": {"variant": variants, "seed": list(seeds)}}


def leak_options() -> dict:
    """Loader options of the leak control's dataset."""
    return {**TESTBED_DATA["options"], "leak_rate": LEAK_RATE}


def arm_name(control: Control) -> str:
    return f"{control.placement} · {control.perturbation}" + (
        f" · fact_noise {control.fact_noise:g}" if control.fact_noise else "")


def judge_control(control: Control, diff: float | None, p_value: float | None,
                  low: float | None = None, high: float | None = None, *, alpha: float = ALPHA) -> dict:
    """One control's verdict from the paired comparison of its arm against label-only."""
    if diff is None or p_value is None:
        return {"control": control.name, "arm": arm_name(control),
                "expected": control.expect, "found": "no result", "passed": False, "why": control.why,
                "diff": diff, "low": low, "high": high, "p_value": p_value}
    better = diff > 0 and p_value < alpha
    found = "better" if better else "not better"
    return {"control": control.name, "arm": arm_name(control),
            "expected": control.expect, "found": found, "passed": found == control.expect,
            "why": control.why, "diff": diff, "low": low, "high": high, "p_value": p_value}


def judge_leak(clean: dict, leaky: dict, *, split: str = "train") -> dict:
    """The leak control from two data reports (cotdistill.data.report.data_report): the leaking
    variant's rationales are flagged at about LEAK_RATE, and the clean task's are not flagged."""
    from cotdistill.data.report import LEAK_WARN_RATE
    rate, clean_rate = leaky["splits"][split]["leak"]["rate"], clean["splits"][split]["leak"]["rate"]
    flagged = any("name the gold answer" in w for w in leaky["warnings"])
    clean_flagged = any("name the gold answer" in w for w in clean["warnings"])
    found = (f"{rate:.0%} of {split} rationales " + ("flagged" if flagged else "NOT flagged")
             + (f"; clean task flagged too ({clean_rate:.0%})" if clean_flagged else "; clean task not flagged"))
    passed = flagged and not clean_flagged and abs(rate - LEAK_RATE) < 0.1 and clean_rate < LEAK_WARN_RATE
    return {"control": "leak", "arm": f"data report, leak_rate {LEAK_RATE}", "expected": "flagged",
            "found": found, "passed": passed, "why": f"{LEAK_RATE:.0%} of rationales state the answer outright",
            "diff": None, "low": None, "high": None, "p_value": None}


def leak_result(load) -> dict:
    """The leak control, computed: `load(split, options)` returns the testbed's examples."""
    from cotdistill.data.report import data_report
    reports = []
    for options in (TESTBED_DATA["options"], leak_options()):
        reports.append(data_report({split: load(split, options) for split in ("train", "test")}))
    return judge_leak(*reports)


def paired_result(control: Control, baseline_rows: dict[int, dict[str, bool]],
                  arm_rows: dict[int, dict[str, bool]], *, n_boot: int = 10_000) -> dict:
    """A control's verdict from per-seed correctness ({seed: {example_id: correct}}) of its arm and
    of label-only: paired by seed over the items both evaluated, as Compare pairs runs."""
    from cotdistill import stats
    seeds = sorted(baseline_rows.keys() & arm_rows.keys())
    if not seeds:
        return judge_control(control, None, None)
    items = sorted(set.intersection(*(set(baseline_rows[s]) & set(arm_rows[s]) for s in seeds)))
    result = stats.seed_paired_diff([[arm_rows[s][i] for i in items] for s in seeds],
                                    [[baseline_rows[s][i] for i in items] for s in seeds], n_boot=n_boot)
    iv = result.interval
    return judge_control(control, iv.estimate, result.p_value, iv.low, iv.high)


def run_selftest(seeds: Iterable[int], out, *, steps: int | None = None, echo=print,
                 device: str | None = None) -> list[dict]:
    """Train every arm of the suite here (finished runs in `out` are reused), then judge each control."""
    import json
    from pathlib import Path

    from cotdistill.config import RunConfig, from_dict
    from cotdistill.data import load_examples
    from cotdistill.runner import run

    out, seeds = Path(out), list(seeds)
    correct: dict[tuple[str, str, float], dict[int, dict[str, bool]]] = {}
    for placement, kind, noise in selftest_arms():
        for seed in seeds:
            cfg = from_dict(RunConfig, arm_config(placement, kind, seed, steps=steps, fact_noise=noise))
            tag = f"{placement}-{kind}" + (f"-noise{noise:g}" if noise else "")
            folder = out / f"{tag}-seed{seed}-{cfg.hash()[:10]}"
            if not (folder / "summary.json").exists():
                echo(f"training {tag}, seed {seed} ({cfg.train.steps} steps) → {folder}")
                run(cfg, folder, device=device)
            rows = [json.loads(line) for line in open(folder / "predictions.jsonl")]
            correct.setdefault((placement, kind, noise), {})[seed] = {r["example_id"]: bool(r["correct"]) for r in rows}
    base = correct[BASELINE]
    results = [paired_result(c, base, correct[c.arm]) for c in CONTROLS]
    results.append(leak_result(lambda split, options: load_examples(TESTBED_DATA["name"], split, **options)))
    echo(format_results(results))
    echo(verdict(results))
    return results


def verdict(results: list[dict]) -> str:
    """One sentence: the pipeline detects what it should, or which control failed."""
    failed = [r for r in results if not r["passed"]]
    if not failed:
        return "the pipeline detects what it should: every control came out as its construction implies"
    return "; ".join(f"control {r['control']!r} failed: expected {r['expected']}, found {r['found']}"
                     for r in failed)


def format_results(results: list[dict]) -> str:
    lines = [f"{'control':<20} {'arm':<30} {'expected':<11} {'found':<34} {'diff vs none [95% CI]':<26} "
             f"{'p':>8}  ok"]
    for r in results:
        diff = "" if r["diff"] is None else f"{r['diff']:+.3f}"
        if r["low"] is not None and r["high"] is not None:
            diff += f" [{r['low']:+.3f}, {r['high']:+.3f}]"
        p = "" if r["p_value"] is None else f"{r['p_value']:.3g}"
        lines.append(f"{r['control']:<20} {r['arm']:<30} {r['expected']:<11} {r['found']:<34} {diff:<26} "
                     f"{p:>8}  {'yes' if r['passed'] else 'NO'}")
    return "\n".join(lines)


def first_run_matrix(name: str) -> dict:
    """The matrix the Launch page submits when nothing is changed (FIRST_RUN), as submit_matrix takes it."""
    base = copy.deepcopy(FIRST_RUN["base"])
    student = base.pop("student")
    data = base.pop("data")
    return {"name": name, "base": {"data": {"options": data["options"]}, **base},
            "factors": {"data.name": [data["name"]], "student": [student],
                        "placement": list(FIRST_RUN["placements"]),
                        "perturbation": copy.deepcopy(FIRST_RUN["perturbations"]),
                        "seed": list(FIRST_RUN["seeds"])}}


KEY_STUDY: dict[str, Any] = {
    "dataset": "synthetic-keyfacts",
    "ks": [3],
    "seeds": [0, 1, 2],
    "method": "grad_x_input",
    "shows": "the full rationale after the label ≈ its 3 key tokens (the fact words) > 3 random words ≥ the "
             "label only in the means over 3 seeds (at 300 steps not yet significant: README \"Key tokens\")",
}
"""The key-token study's defaults on its built-in task (cotdistill/data/keyfacts.py), as the Key tokens
page starts its forms when the data is that task: attribution by gradient × input (ranked by magnitude,
it puts the fact words first far more often than integrated gradients or occlusion on this task), k =
n_items (the number of fact words), 3 seeds. A `before` run with the Launch page's default training
(FIRST_RUN's) on the task learns to read the fact words; the study then trains 4 arms × 3 seeds with
the same training settings (measured: README "Key tokens", bench/key_study.py)."""
