"""The testbed with known answers: the first experiment the app proposes, and the control suite.

    cotdistill selftest                       # the control suite, trained here, printed as a table
    plan = selftest_plan(seeds=[0, 1, 2])     # the runs it needs, as run configs
    run_selftest([0, 1], out)                 # train them here, judge each control, print the table

The testbed is the built-in counting task (cotdistill/data/counting.py): a seeded world gives each
made-up object a colour; a question lists three objects and asks how many are red, showing the colour
of about a quarter of them; the rationale states each object's colour. What each arm must show
follows from that construction, not from any result:

- **positive control** — `after` with the true rationale supervises every fact the count needs, so
  it must beat label-only, significantly by the procedure-level test (paired t over seed pairs,
  stats.procedure_diff, as Compare judges) and by at least MIN_GAIN;
- **negative controls** — random facts (`fact_noise: 1`: the rationale keeps its form, every colour it
  states is drawn at random) and `filler` (dots) carry no fact, so neither may beat label-only
  significantly. When both arms answer a constant label on most seed pairs the control still passes
  ("not better" is what the pipeline must say) but is marked WEAK: it then shows only that no gain
  was invented, not that a learned-nothing arm is told apart from a learning one (label-only learns
  the colours shown in the question on some seeds only, README "The first experiment"). `mismatch` is *not* a negative control
  on this task: the world's facts are shared by every question, so another question's rationale still
  states true colours — see README "The first experiment";
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
"""Significance level of every control (two-sided paired t over the seed pairs: the procedure)."""

TESTBED_DATA: dict[str, Any] = {
    "name": "synthetic-count",
    "options": {"n_train": 600, "n_test": 200, "n_items": 3, "n_objects": 30, "n_colours": 2, "seed": 0,
                "asked_colours": 1, "fact_form": "pair", "shown_share": 0.25},
}
"""Three items of a 30-object, two-colour world; every question asks how many are red; a quarter of the
items show their colour in the question ("Items: kada red, budu, mome."), the rationale states all
three ("kada red. budu blue. mome red."). Why each knob (measured: README "The first experiment"):
one asked colour makes the count linear in the facts (asking about either colour made the answer an
interaction of the asked colour and the facts, which the tiny student learned late and at a
seed-dependent step); the colour right after the name puts each fact on the name's own token, where
the count at the label can read it; the colours shown in the question give label-only something to
learn (it would otherwise answer one constant letter and every negative control would be weak).
Known shortfall (README): when label-only starts reading them depends on the seed, so at 200 steps it
is still a constant answerer on some seeds (0 and 2 of 0-2) and the negative controls are then WEAK
(passed, but they show only that no gain was invented); a larger share (0.4, 0.5) lets it learn the hidden colours too, as fast as `after`."""

TESTBED_BASE: dict[str, Any] = {
    "data": TESTBED_DATA,
    "student": {"name": "tiny", "size": "tiny", "vocab_size": 512, "max_length": 128},
    "train": {"steps": 200, "batch_size": 32, "lr": 0.0015, "warmup_steps": 30},
    "eval": {"mode": "auto", "batch_size": 100, "every": 50, "val_size": 64},
}
"""The tiny student at lr 1.5e-3 (6e-3 and 1.2e-2 left the facts unlearned), 200 steps: `after` has learned
the count by step 150 on every seed measured (1.0 on seeds 0-4), label-only is at 0.43-0.58 (README)."""

FIRST_RUN_STEPS = 200
"""Steps of each default run, as the self-test's (bench/first_run.py: the matrix within 5 minutes of an
idle 2-core machine)."""
FIRST_RUN: dict[str, Any] = {
    "base": {**TESTBED_BASE, "train": {**TESTBED_BASE["train"], "steps": FIRST_RUN_STEPS}},
    "placements": ["none", "after"],
    "perturbations": [{"kind": "none"}, {"kind": "filler", "level": "token", "params": {"length": "same"}}],
    "seeds": [0, 1, 2],
}
"""The Launch page's default matrix: label-only, rationale after the label, and filler after the label,
three seeds, with validation accuracy every 50 steps on 64 test items (a curve on Compare). `after` vs
`none` is the difference that should be real (the study's first claim, by the procedure-level test
over the 3 seed pairs); `after · filler` vs `none` the one that should not (a negative control; placement
`none` ignores the perturbation, so its filler cell is the same run)."""

PRESETS: dict[str, dict[str, Any]] = {
    "testbed-before": {
        **FIRST_RUN, "perturbations": [{"kind": "none"}], "placements": ["none", "before", "after"],
        "title": "The rationale before the label, beside after",
        "shows": "`before` (the rationale, then the label; evaluated by generating the rationale) beside "
                 "`after` and label-only, 3 seeds; label-only and `after` are the default experiment's runs",
        "expected_s": 150,
    },
    "testbed-shuffle": {
        **FIRST_RUN, "perturbations": [{"kind": "none"}, {"kind": "shuffle", "level": "sentence"}],
        "title": "A shuffled rationale after the label",
        "shows": "`after · shuffle` (the rationale's facts in shuffled order) against `after` and label-only, "
                 "3 seeds: the second claim, that the order is not what teaches",
        "expected_s": 120,
    },
}
"""The study's other two comparisons on the testbed, one click each on the Launch page (the first
experiment's shape; their label-only and `after` runs are the default experiment's, reused)."""

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


MIN_GAIN = 0.10
"""The positive control's margin: `after` must beat label-only significantly AND by at least this much
(mean over seed pairs). The effect is there by construction and large; a pipeline that only just
detects it has lost most of what the rationale carries."""

WEAK = "weak: both arms answer a constant label"
"""A negative control's note when label-only and its arm are both flagged as constant answerers in
most seed pairs: "not better" is right, but it then shows only that the pipeline invented no gain
(neither arm learned anything to compare)."""


def judge_control(control: Control, diff: float | None, p_value: float | None,
                  low: float | None = None, high: float | None = None, *, n_pairs: int | None = None,
                  test_set: dict | None = None, constant_pairs: int = 0, alpha: float = ALPHA,
                  min_gain: float = MIN_GAIN) -> dict:
    """One control's verdict from the procedure-level comparison of its arm against label-only
    (stats.procedure_diff over the seed pairs: `diff` the mean per-pair difference, `low`/`high` its
    t interval, `p_value` the paired t-test's; p None with a difference = one seed pair, NEEDS_SEEDS).

    `test_set` ({low, high, p_value}: the item-level comparison of these trained models) is reported
    beside it, never judged. `constant_pairs`: seed pairs in which both runs are flagged as constant
    answerers (cotdistill.evaluate.diagnostics); when that is most of the `n_pairs`, a negative control's
    "not better" is marked WEAK (it passes, `weak` is True), and the positive control cannot have
    passed anyway. The positive control
    passes when `after` is significantly better by at least `min_gain`."""
    from cotdistill.stats.inference import NEEDS_SEEDS
    out = {"control": control.name, "arm": arm_name(control), "expected": control.expect,
           "why": control.why, "diff": diff, "low": low, "high": high, "p_value": p_value,
           "n_pairs": n_pairs, "constant_pairs": constant_pairs, "weak": False,
           "test_low": (test_set or {}).get("low"), "test_high": (test_set or {}).get("high"),
           "test_p": (test_set or {}).get("p_value")}
    if diff is None:
        return {**out, "found": "no result", "passed": False}
    if p_value is None:
        return {**out, "found": NEEDS_SEEDS, "passed": False}
    better = diff > 0 and p_value < alpha
    found = "better" if better else "not better"
    passed = found == control.expect
    if better and control.expect == "better" and diff < min_gain:
        found, passed = f"better, by less than {min_gain:+.2f}", False
    if not better and n_pairs and constant_pairs * 2 > n_pairs:
        found = f"{found} ({WEAK} on {constant_pairs} of {n_pairs} seed pairs)"
        out["weak"] = True
    return {**out, "found": found, "passed": passed}


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
            "diff": None, "low": None, "high": None, "p_value": None, "n_pairs": None, "constant_pairs": 0,
            "weak": False,
            "test_low": None, "test_high": None, "test_p": None}


def leak_result(load) -> dict:
    """The leak control, computed: `load(split, options)` returns the testbed's examples."""
    from cotdistill.data.report import data_report
    reports = []
    for options in (TESTBED_DATA["options"], leak_options()):
        reports.append(data_report({split: load(split, options) for split in ("train", "test")}))
    return judge_leak(*reports)


def paired_result(control: Control, baseline_rows: dict[int, dict[str, bool]],
                  arm_rows: dict[int, dict[str, bool]], *, collapsed: dict[tuple, dict[int, bool]] | None = None,
                  n_boot: int = 10_000) -> dict:
    """A control's verdict from per-seed correctness ({seed: {example_id: correct}}) of its arm and
    of label-only, paired by seed over the items both evaluated, as Compare pairs runs: the procedure
    (stats.procedure_diff over the per-seed-pair accuracy differences) decides; the item-level
    comparison (stats.seed_paired_diff) is reported as `test_*`. `collapsed` ({arm: {seed: flagged}},
    arms as Control.arm and BASELINE) says which runs are constant answerers."""
    from cotdistill.stats import inference as stats
    seeds = sorted(baseline_rows.keys() & arm_rows.keys())
    if not seeds:
        return judge_control(control, None, None)
    items = sorted(set.intersection(*(set(baseline_rows[s]) & set(arm_rows[s]) for s in seeds)))
    result = stats.seed_paired_diff([[arm_rows[s][i] for i in items] for s in seeds],
                                    [[baseline_rows[s][i] for i in items] for s in seeds], n_boot=n_boot)
    procedure = stats.procedure_diff(result.per_pair_diff)
    flags = collapsed or {}
    constant = sum(bool(flags.get(BASELINE, {}).get(s)) and bool(flags.get(control.arm, {}).get(s)) for s in seeds)
    iv = result.interval
    return judge_control(control, procedure.estimate, procedure.p_value, procedure.low, procedure.high,
                         n_pairs=len(seeds), constant_pairs=constant,
                         test_set={"low": iv.low, "high": iv.high, "p_value": result.p_value})


def _train_one(cfg_dict: dict, folder: str, device: str | None) -> str:
    """One self-test run in a child process of run_selftest(workers=N): one torch thread each."""
    import torch

    from cotdistill.config import RunConfig, from_dict
    from cotdistill.run import run
    torch.set_num_threads(1)
    run(from_dict(RunConfig, cfg_dict), folder, device=device)
    return folder


def _train_in_children(todo: list, device: str | None, workers: int) -> None:
    """Train `todo` ([(cfg, folder)]) in fresh Python processes, `workers` at a time. Plain child
    processes (`python -c`), not multiprocessing's spawn, which re-runs the parent's __main__ (under
    pytest after an AppTest, that is the app's script)."""
    import json
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    from cotdistill.errors import RunError
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    code = ("import json, sys; from cotdistill.studies.testbed import _train_one; "
            "_train_one(json.loads(sys.argv[1]), sys.argv[2], sys.argv[3] or None)")
    waiting, running = list(todo), []
    while waiting or running:
        while waiting and len(running) < workers:
            cfg, folder = waiting.pop(0)
            logs = Path(folder).parent / ".logs"         # beside the run folders, not among them
            logs.mkdir(parents=True, exist_ok=True)
            log = open(logs / f"{Path(folder).name}.log", "wb")
            proc = subprocess.Popen([sys.executable, "-c", code, json.dumps(cfg.to_dict()), str(folder), device or ""],
                                    env=env, stdout=log, stderr=subprocess.STDOUT)
            running.append((proc, folder, log))
        for item in list(running):
            proc, folder, log = item
            if proc.poll() is None:
                continue
            running.remove(item)
            log.close()
            if proc.returncode != 0:
                for other, _, other_log in running:
                    other.kill()
                    other.wait()
                    other_log.close()
                tail = (Path(folder).parent / ".logs" / f"{Path(folder).name}.log").read_text(errors="replace")[-1500:]
                raise RunError(f"self-test run {folder} failed (exit code {proc.returncode}); its log ends:\n{tail}")
        time.sleep(0.2)


def run_selftest(seeds: Iterable[int], out, *, steps: int | None = None, echo=print,
                 device: str | None = None, workers: int = 1) -> list[dict]:
    """Train every arm of the suite here (finished runs in `out` are reused), then judge each control.
    `workers` > 1 trains that many runs at a time in fresh processes with one torch thread each (as
    `cotdistill up` runs two on a 2-core machine; the testbed's accuracies were the same with 1 and 2
    threads, README "The first experiment"); 1 trains them in this process, one after another."""
    import json
    from pathlib import Path

    from cotdistill.config import RunConfig, from_dict
    from cotdistill.data import load_examples
    from cotdistill.run import run

    out, seeds = Path(out), list(seeds)
    cells, todo = [], []
    for placement, kind, noise in selftest_arms():
        for seed in seeds:
            cfg = from_dict(RunConfig, arm_config(placement, kind, seed, steps=steps, fact_noise=noise))
            tag = f"{placement}-{kind}" + (f"-noise{noise:g}" if noise else "")
            folder = out / f"{tag}-seed{seed}-{cfg.hash()[:10]}"
            cells.append(((placement, kind, noise), seed, folder))
            if not (folder / "summary.json").exists():
                echo(f"training {tag}, seed {seed} ({cfg.train.steps} steps) → {folder}")
                todo.append((cfg, folder))
    if workers > 1 and len(todo) > 1:
        _train_in_children(todo, device, workers)
    else:
        for cfg, folder in todo:
            run(cfg, folder, device=device)
    correct: dict[tuple[str, str, float], dict[int, dict[str, bool]]] = {}
    collapsed: dict[tuple[str, str, float], dict[int, bool]] = {}
    for arm, seed, folder in cells:
        rows = [json.loads(line) for line in open(folder / "predictions.jsonl")]
        correct.setdefault(arm, {})[seed] = {r["example_id"]: bool(r["correct"]) for r in rows}
        summary = json.loads((folder / "summary.json").read_text())
        collapsed.setdefault(arm, {})[seed] = bool(summary.get("collapsed"))
    base = correct[BASELINE]
    results = [paired_result(c, base, correct[c.arm], collapsed=collapsed) for c in CONTROLS]
    results.append(leak_result(lambda split, options: load_examples(TESTBED_DATA["name"], split, **options)))
    echo(format_results(results))
    echo(verdict(results))
    return results


def verdict(results: list[dict]) -> str:
    """One sentence: the pipeline detects what it should, or which control failed."""
    failed = [r for r in results if not r["passed"]]
    if not failed:
        weak = [r["control"] for r in results if r.get("weak")]
        return ("the pipeline detects what it should: every control came out as its construction implies"
                + (f" (weak: {', '.join(weak)}: label-only and the arm both answered a constant label on most "
                   f"seed pairs, so these show only that no gain was invented)" if weak else ""))
    return "; ".join(f"control {r['control']!r} failed: expected {r['expected']}, found {r['found']}"
                     for r in failed)


def format_results(results: list[dict]) -> str:
    """The suite as a table: each control's finding, its procedure-level difference against
    label-only (mean over seed pairs, t interval, paired-t p: what is judged) and, second, the test
    set's (these trained models on these items: item-level interval and p, reported only)."""
    w = max([34] + [len(r["found"]) for r in results])
    lines = [f"{'control':<22} {'arm':<28} {'expected':<10} {'found':<{w}} {'procedure: diff [95% CI]':<26} "
             f"{'p':>8}  {'test set [95% CI]':<18} {'p':>8}  ok"]
    for r in results:
        diff = "" if r["diff"] is None else f"{r['diff']:+.3f}"
        if r["low"] is not None and r["high"] is not None:
            diff += f" [{r['low']:+.3f}, {r['high']:+.3f}]"
        p = "" if r["p_value"] is None else f"{r['p_value']:.2g}"
        test = "" if r.get("test_low") is None else f"[{r['test_low']:+.3f}, {r['test_high']:+.3f}]"
        test_p = "" if r.get("test_p") is None else f"{r['test_p']:.2g}"
        lines.append(f"{r['control']:<22} {r['arm']:<28} {r['expected']:<10} {r['found']:<{w}} {diff:<26} "
                     f"{p:>8}  {test:<18} {test_p:>8}  {'yes' if r['passed'] else 'NO'}")
    pairs = next((r["n_pairs"] for r in results if r.get("n_pairs")), None)
    if pairs:
        lines.append(f"(procedure: paired t over {pairs} seed pairs, the unit that is judged; a positive control "
                     f"must be significant at {ALPHA} and at least {MIN_GAIN:+.2f}; test set: item-level, for reading only)")
    return "\n".join(lines)


def _matrix(spec: dict, name: str) -> dict:
    base = copy.deepcopy(spec["base"])
    student = base.pop("student")
    data = base.pop("data")
    return {"name": name, "base": {"data": {"options": data["options"]}, **base},
            "factors": {"data.name": [data["name"]], "student": [student],
                        "placement": list(spec["placements"]),
                        "perturbation": copy.deepcopy(spec["perturbations"]),
                        "seed": list(spec["seeds"])}}


def first_run_matrix(name: str) -> dict:
    """The matrix the Launch page submits when nothing is changed (FIRST_RUN), as submit_matrix takes it."""
    return _matrix(FIRST_RUN, name)


def preset_matrix(key: str, name: str | None = None) -> dict:
    """One of PRESETS as the matrix submit_matrix takes (named `name`, default the key)."""
    if key not in PRESETS:
        raise KeyError(f"no testbed preset {key!r}; the presets are {', '.join(PRESETS)}")
    return _matrix(PRESETS[key], name or key)


KEY_STUDY: dict[str, Any] = {
    "dataset": "synthetic-keyfacts",
    "ks": [3],
    "seeds": [0, 1, 2],
    "method": "grad_x_input",
    "train": {"steps": 300, "batch_size": 32, "lr": 0.003, "warmup_steps": 30},
    "shows": "the full rationale after the label ≈ its 3 key tokens (the fact words) > 3 random words ≥ the "
             "label only in the means over 3 seeds (at 300 steps not yet significant: README \"Key tokens\")",
}
"""The key-token study's defaults on its built-in task (cotdistill/data/keyfacts.py), as the Key tokens
page starts its forms when the data is that task: attribution by gradient × input (ranked by magnitude,
it puts the fact words first far more often than integrated gradients or occlusion on this task), k =
n_items (the number of fact words), 3 seeds, trained with `train` (300 steps at lr 3e-3): the Launch
page's default training when this was measured (README "Key tokens", bench/key_study.py); the first
experiment has since moved to 200 steps at lr 1.5e-3 for the counting testbed, which these figures
were not measured at, so the study and its `before` scorer keep their own settings here."""
