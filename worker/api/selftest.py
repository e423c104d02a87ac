"""The control suite on the workers: the Datasets screen's "Run the self-test" button.

    start_selftest()                 # submits the suite's matrix as the experiment "selftest"
    selftest_status()                # progress, then each control's verdict (cotdistill.studies.testbed)

The same plan and the same judging as `cotdistill selftest`, but the runs go through the job system,
and each control's difference is the one Compare would show (`paired`: the procedure-level paired t
over seed pairs decides, the test set's item-level figures are reported beside it; runs flagged as
constant answers make a negative control weak). Submitting again
reuses what already succeeded, so the button is instant once the suite has run.
"""

from __future__ import annotations

from cotdistill.studies import testbed
from worker.api.core import NotFound
from worker.api.runs import list_runs, paired, run_detail, submit_matrix

SELFTEST = "selftest"
SEEDS = (0, 1, 2)


def start_selftest(seeds=SEEDS, *, steps: int | None = None) -> dict:
    """Queue the suite's runs (baseline, positive and negative controls × seeds) as one experiment."""
    return submit_matrix(testbed.selftest_matrix(SELFTEST, list(seeds), steps=steps))


def selftest_status(name: str = SELFTEST) -> dict:
    """{state: none | running | failed | done, done, total, results, verdict, passed}."""
    try:
        runs = list_runs(experiment=name)
    except NotFound:                             # never started
        return {"state": "none", "done": 0, "total": 0, "results": [], "verdict": None, "passed": None}
    total, done = len(runs), sum(r["status"] == "succeeded" for r in runs)
    failed = [r for r in runs if r["status"] in ("failed", "cancelled")]
    status = {"state": "running", "done": done, "total": total, "results": [], "verdict": None, "passed": None}
    if failed:
        return {**status, "state": "failed",
                "verdict": f"{len(failed)} run(s) of the self-test did not finish (#{failed[0]['id']} "
                           f"{failed[0]['status']}): retry them on the Runs screen"}
    if done < total or not total:
        return status
    arms: dict[tuple[str, str, float], list[int]] = {}
    collapsed: dict[int, bool] = {}
    for r in runs:
        detail = run_detail(r["id"])
        noise = float((detail["config"]["data"].get("options") or {}).get("fact_noise") or 0.0)
        arms.setdefault((r["placement"], r["perturbation"], noise), []).append(r["id"])
        collapsed[r["id"]] = bool((detail.get("summary") or {}).get("collapsed"))
    results = []
    for control in testbed.CONTROLS:
        mine, base = arms.get(control.arm), arms.get(testbed.BASELINE)
        if not mine or not base:
            results.append(testbed.judge_control(control, None, None))
            continue
        p = paired(mine, base)                   # the procedure (seeds as the unit) at the top, as Compare
        constant = sum(collapsed.get(a, False) and collapsed.get(b, False) for a, b in p["pairs"])
        results.append(testbed.judge_control(control, p["diff"], p["p_value"], p["low"], p["high"],
                                             n_pairs=len(p["pairs"]), test_set=p["test_set"],
                                             constant_pairs=constant))
    from cotdistill.data import load_examples
    results.append(testbed.leak_result(
        lambda split, options: load_examples(testbed.TESTBED_DATA["name"], split, **options)))
    return {**status, "state": "done", "results": results, "verdict": testbed.verdict(results),
            "passed": all(r["passed"] for r in results), "min_gain": testbed.MIN_GAIN}
