"""The self-test on the job system (worker/api/selftest.py, the Datasets screen's button): the suite
is submitted as one experiment; once its runs have finished, each control is judged from the same
paired comparison Compare shows. Runs are finished here by writing their predictions directly."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import insert, select

N_ITEMS = 120


@pytest.fixture
def lab(tmp_path, monkeypatch):
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path))
    monkeypatch.delenv("COTDISTILL_DATABASE_URL", raising=False)
    monkeypatch.delenv("COTDISTILL_BROKER_URL", raising=False)
    return tmp_path


def finish(accuracy_by_arm: dict[tuple[str, str], float], collapsed: tuple = ()) -> None:
    """Mark every selftest run succeeded with predictions right at the arm's rate (seeded); the runs of
    the arms in `collapsed` are flagged as constant answerers in their summaries."""
    from worker.api.core import session
    from worker.models import Prediction, Run
    with session() as s:
        for run in s.scalars(select(Run)).all():
            arm = (run.config["placement"], run.config["perturbation"]["kind"],
                   float(run.config["data"]["options"].get("fact_noise") or 0))
            rng = random.Random(f"{arm}:{run.config['seed']}")
            correct = [rng.random() < accuracy_by_arm[arm] for _ in range(N_ITEMS)]
            run.status, run.accuracy = "succeeded", sum(correct) / N_ITEMS
            run.summary = {"accuracy": run.accuracy, "n": N_ITEMS, "collapsed": arm in collapsed}
            s.execute(insert(Prediction), [{"run_id": run.id, "example_id": f"count-test-{i:05d}",
                                            "predicted": "a", "correct": c} for i, c in enumerate(correct)])
        s.commit()


def test_the_suite_is_one_experiment_of_four_arms_and_reports_progress(lab):
    from worker import api
    assert api.selftest_status()["state"] == "none"
    result = api.start_selftest(seeds=[0, 1, 2], steps=5)
    assert len(result["queued"]) == 12 and result["name"] == "selftest"
    status = api.selftest_status()
    assert (status["state"], status["done"], status["total"]) == ("running", 0, 12)
    arms = {(r["placement"], r["perturbation"]) for r in api.list_runs(experiment="selftest")}
    assert arms == {("none", "none"), ("after", "none"), ("after", "filler")}   # + after · none · fact_noise 1
    again = api.start_selftest(seeds=[0, 1, 2], steps=5)                 # pressing twice queues nothing
    assert again["queued"] == [] and len(again["kept"]) == 12


def test_finished_runs_are_judged_as_the_construction_implies(lab):
    from worker import api
    api.start_selftest(seeds=[0, 1, 2], steps=5)
    finish({("none", "none", 0.0): 0.4, ("after", "none", 0.0): 0.9, ("after", "none", 1.0): 0.4,
            ("after", "filler", 0.0): 0.4})
    status = api.selftest_status()
    assert status["state"] == "done" and status["passed"] is True, status["results"]
    by_name = {r["control"]: r for r in status["results"]}
    assert by_name["positive"]["found"] == "better" and by_name["positive"]["p_value"] < 0.05   # t over 3 seeds
    assert by_name["positive"]["n_pairs"] == 3 and by_name["positive"]["diff"] >= 0.10
    assert by_name["negative: filler"]["found"] == "not better"
    assert by_name["leak"]["passed"]
    # The same numbers as the paired comparison Compare shows.
    runs = api.list_runs(experiment="selftest")
    positive = [r["id"] for r in runs if r["placement"] == "after" and r["perturbation"] == "none"
                and not api.run_detail(r["id"])["config"]["data"]["options"].get("fact_noise")]
    base = [r["id"] for r in runs if r["placement"] == "none"]
    compare = api.paired(positive, base)
    assert (by_name["positive"]["diff"], by_name["positive"]["p_value"]) == (compare["diff"], compare["p_value"])
    assert compare["verdict"] == "significant"                # the procedure-level verdict, seeds as the unit
    assert (by_name["positive"]["test_low"], by_name["positive"]["test_p"]) == (
        compare["test_set"]["low"], compare["test_set"]["p_value"])
    assert status["verdict"].startswith("the pipeline detects what it should")


def test_a_negative_control_that_helps_fails_the_suite_by_name(lab):
    from worker import api
    api.start_selftest(seeds=[0, 1, 2], steps=5)
    finish({("none", "none", 0.0): 0.4, ("after", "none", 0.0): 0.9, ("after", "none", 1.0): 0.4,
            ("after", "filler", 0.0): 0.9})
    status = api.selftest_status()
    assert status["passed"] is False
    assert status["verdict"] == "control 'negative: filler' failed: expected not better, found better"



def test_a_negative_control_where_both_arms_answer_a_constant_passes_marked_weak(lab):
    from worker import api
    api.start_selftest(seeds=[0, 1, 2], steps=5)
    finish({("none", "none", 0.0): 0.4, ("after", "none", 0.0): 0.9, ("after", "none", 1.0): 0.4,
            ("after", "filler", 0.0): 0.4}, collapsed=(("none", "none", 0.0), ("after", "filler", 0.0)))
    status = api.selftest_status()
    by_name = {r["control"]: r for r in status["results"]}
    assert by_name["negative: filler"]["found"] == "not better (weak: both arms answer a constant label on 3 of 3 seed pairs)"
    assert by_name["negative: filler"]["passed"] is True and by_name["negative: filler"]["weak"] is True
    assert by_name["negative: random facts"]["weak"] is False           # its own runs vary
    assert status["passed"] is True
    assert status["verdict"].startswith("the pipeline detects what it should") and "(weak: negative: filler:" in status["verdict"]


def test_one_seed_needs_more_seeds(lab):
    from worker import api
    api.start_selftest(seeds=[0], steps=5)
    finish({("none", "none", 0.0): 0.4, ("after", "none", 0.0): 0.9, ("after", "none", 1.0): 0.4,
            ("after", "filler", 0.0): 0.4})
    by_name = {r["control"]: r for r in api.selftest_status()["results"]}
    assert by_name["positive"]["found"] == "needs ≥ 2 seeds" and by_name["positive"]["passed"] is False
