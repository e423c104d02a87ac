"""Data warnings of finished runs (train/test overlap, answer leaks: their summaries' data_warnings)
on the Compare screen, each sentence once with the runs it concerns, and on the Runs screen for one
run. Runs are finished as a worker finishes them (worker.state), with constructed summaries."""

from types import SimpleNamespace

import pytest

from tests.app.apptest import finish_run, open_page, use_fresh_database, widget
from tests.worker.stack import BASE

GOLD = ["a", "b"] * 5
OVERLAP = ("train/test overlap: 3 of 10 test questions also occur among the training questions (2 exactly; "
           "e.g. t1, t2, t3): their accuracy measures recall of training items")
LEAK = ("answer leak: 4 of 10 training rationales (40%, warned from 10%) name the gold answer (e.g. r0, r1, "
        "r2): the student can learn the label from the rationale; cut or strip the answer statements at import")


def finish(run_id: int, warnings: list[str]) -> None:
    from cotdistill.evaluate.diagnostics import diagnose
    records = [{"example_id": f"e{i}", "gold": g, "predicted": g if i else "a", "correct": bool(i) or g == "a",
                "scoring": "letter", "scores": {"a": 0.0, "b": 0.0}} for i, g in enumerate(GOLD)]
    summary = {"accuracy": 0.9, "accuracy_low": 0.6, "accuracy_high": 1.0, "scoring": "letter",
               "eval_mode": "score", "n": len(GOLD), "data_warnings": warnings,
               **diagnose(records, accuracy_low=0.6, accuracy_high=1.0)}
    finish_run(run_id, summary, records)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """Two arms × two seeds: the `after` runs warned of overlap and a leak, seed 1 of `none` of the
    overlap only, seed 0 of `none` of nothing."""
    from worker import api
    with pytest.MonkeyPatch.context() as mp:
        use_fresh_database(tmp_path_factory.mktemp("warnings"), mp)
        api.submit_matrix({"name": "leaky", "base": BASE, "factors": {"placement": ["none", "after"], "seed": [0, 1]}})
        runs = {(r["placement"], r["seed"]): r["id"] for r in api.list_runs(experiment="leaky")}
        for (placement, seed), run_id in runs.items():
            finish(run_id, [OVERLAP, LEAK] if placement == "after" else [OVERLAP] if seed == 1 else [])
        yield SimpleNamespace(runs=runs)


def data_warnings(at) -> list[str]:
    return [w.value for w in at.warning if w.value.startswith("⚠ Data:")]


def test_compare_warns_of_each_data_problem_once_with_its_runs(lab):
    at = open_page("screens/compare.py", experiment="leaky")
    r = lab.runs
    overlapping = ", ".join(f"#{i}" for i in sorted([r[("none", 1)], r[("after", 0)], r[("after", 1)]]))
    leaking = ", ".join(f"#{i}" for i in sorted([r[("after", 0)], r[("after", 1)]]))
    assert data_warnings(at) == [
        "⚠ Data: 3 of the 4 finished run(s) compared were trained or tested on data with train/test overlap or "
        "answer leaks; their accuracy may not measure what the comparison is about.\n\n"
        f"- {OVERLAP} (run(s) {overlapping})\n- {LEAK} (run(s) {leaking})"]


def test_compare_of_clean_runs_shows_no_data_warning(lab):
    at = open_page("screens/compare.py", runs=str(lab.runs[("none", 0)]))
    widget(at.radio, "Compare").set_value("chosen runs").run()
    assert [r for r in at.multiselect(key="compare_runs").value] == [lab.runs[("none", 0)]]
    assert data_warnings(at) == []


def test_runs_screen_shows_one_runs_data_warnings(lab):
    at = open_page("screens/runs.py", experiment="leaky")
    run_id = lab.runs[("after", 0)]
    at.selectbox(key="answers_run").set_value(run_id).run()
    assert [w.value for w in at.warning if "'s data:" in w.value] == [
        f"⚠ Run #{run_id}'s data:\n\n- {OVERLAP}\n- {LEAK}"]
    at.selectbox(key="answers_run").set_value(lab.runs[("none", 0)]).run()
    assert [w.value for w in at.warning if "'s data:" in w.value] == []
