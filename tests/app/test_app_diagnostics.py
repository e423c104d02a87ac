"""Evaluation diagnostics in the app: the Compare screen read under a chosen scoring mode (bars, the
constant-answer marker of that mode, the paired comparison and its warning), and one run's answers
label by label on the Runs screen. Runs are finished as a worker finishes them (worker.state), with
answers chosen so that each arm collapses under one scoring mode and not the other."""

from types import SimpleNamespace

import pytest

from tests.app.apptest import (chart, chart_traces, decode, finish_run, open_page, texts, use_fresh_database,
                               widget)
from tests.worker.stack import BASE

N = 20
GOLD = ["a"] * 10 + ["b"] * 10


def answers(kind: str, seed: int) -> list[str]:
    """'a' or 'b' everywhere (a constant answer), or gold with one seed-dependent mistake."""
    if kind in ("a", "b"):
        return [kind] * N
    wrong = seed % N
    return [g if i != wrong else ("b" if g == "a" else "a") for i, g in enumerate(GOLD)]


# placement → (letter answers, text answers)
ARMS = {"none": ("a", "gold"), "after": ("gold", "b"), "before": ("b", "gold")}


def finish(run_id: int, placement: str, seed: int) -> None:
    from cotdistill.evaluate.diagnostics import diagnose
    from cotdistill.stats.inference import bootstrap_ci
    letter, text = (answers(kind, seed) for kind in ARMS[placement])
    records = [{"example_id": f"e{i}", "gold": g, "predicted": lp, "correct": lp == g, "scoring": "letter",
                "scores": {"a": 0.0, "b": 0.0},
                "by_mode": {"letter": {"predicted": lp, "correct": lp == g},
                            "text": {"predicted": tp, "correct": tp == g}}}
               for i, (g, lp, tp) in enumerate(zip(GOLD, letter, text))]
    interval = bootstrap_ci([r["correct"] for r in records], n_boot=2000, seed=seed)
    summary = {"accuracy": interval.estimate, "accuracy_low": interval.low, "accuracy_high": interval.high,
               "scoring": "letter", "eval_mode": "score", "n": N,
               **diagnose(records, accuracy_low=interval.low, accuracy_high=interval.high)}
    finish_run(run_id, summary, records)


@pytest.fixture(scope="module")
def modes(tmp_path_factory):
    """Three arms × two seeds, finished with letter and text answers (no worker)."""
    from worker import api
    with pytest.MonkeyPatch.context() as mp:
        use_fresh_database(tmp_path_factory.mktemp("modes"), mp)
        api.submit_matrix({"name": "modes", "base": BASE,
                           "factors": {"placement": list(ARMS), "seed": [0, 1]}})
        runs = api.list_runs(experiment="modes")
        for r in runs:
            finish(r["id"], r["placement"], r["seed"])
        yield SimpleNamespace(ids=[r["id"] for r in runs], runs={(r["placement"], r["seed"]): r["id"] for r in runs})


def bar_heights(at) -> dict[str, float]:
    spec = chart(at, "accuracy_bars")
    return {decode(t["x"][0])[0]: decode(t["y"])[0] for t in chart_traces(spec, "bar")}


def marked(at) -> set[str]:
    """The placements whose bar carries the ⚠ constant-answer marker."""
    spec = chart(at, "accuracy_bars")
    return {decode(t["x"][0])[0] for t in chart_traces(spec, "scatter") if t["mode"] == "text"}


def test_scoring_selector_changes_bars_and_constant_answer_markers(modes):
    from worker import api
    at = open_page("screens/compare.py", experiment="modes")
    scoring = widget(at.radio, "Scoring")
    assert scoring.options == ["letter", "text"] and scoring.value == "letter"

    letter = {a["placement"]: a["mean"] for a in api.compare(modes.ids, scoring="letter")}
    assert bar_heights(at) == pytest.approx(letter)
    assert letter == pytest.approx({"none": 0.5, "after": 0.95, "before": 0.5})
    assert marked(at) == {"none", "before"}                 # constant 'a' and constant 'b' under letter

    scoring.set_value("text").run()
    assert not at.exception, [e.value for e in at.exception]
    text = {a["placement"]: a["mean"] for a in api.compare(modes.ids, scoring="text")}
    assert text == pytest.approx({"none": 0.95, "after": 0.5, "before": 0.95})
    assert bar_heights(at) == pytest.approx(text)
    assert marked(at) == {"after"}                          # the flags of text answers, not the runs' own
    assert "the runs' own scoring is `letter`" in texts(at)
    table = at.dataframe[0].value.set_index("placement")
    assert table.loc["after", "collapsed_seeds"] == 2 and table.loc["none", "collapsed_seeds"] == 0

    diagnostics = api.mode_diagnostics(modes.ids, "text")
    assert {i for i, d in diagnostics.items() if d["collapsed"]} == {modes.runs[("after", 0)], modes.runs[("after", 1)]}
    assert diagnostics[modes.runs[("after", 0)]]["prediction_distribution"] == {"b": 1.0}


def test_paired_comparison_follows_the_scoring_and_warns_next_to_its_interval(modes):
    from worker import api
    at = open_page("screens/compare.py", experiment="modes")
    arms = {a["placement"]: a for a in api.compare(modes.ids)}
    at.selectbox(key="arm_a").set_value(arms["none"]["arm_key"]).run()
    at.selectbox(key="arm_b").set_value(arms["before"]["arm_key"]).run()
    result = api.paired(arms["none"]["runs"], arms["before"]["runs"], scoring="letter")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["A − B accuracy"] == f"{result['diff']:+.3f}"
    assert metrics["95% interval over seeds"] == f"⚠ [{result['low']:+.3f}, {result['high']:+.3f}]"
    assert metrics["test-set interval"] == f"[{result['test_set']['low']:+.3f}, {result['test_set']['high']:+.3f}]"
    assert result["basis"]["warning"] and any(result["basis"]["warning"] in e.value for e in at.error)

    widget(at.radio, "Scoring").set_value("text").run()
    result = api.paired(arms["none"]["runs"], arms["before"]["runs"], scoring="text")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["A − B accuracy"] == f"{result['diff']:+.3f}"
    assert metrics["95% interval over seeds"] == f"[{result['low']:+.3f}, {result['high']:+.3f}]"
    assert result["basis"]["warning"] is None and not at.error


def test_runs_screen_shows_a_runs_answers_label_by_label(modes):
    from worker import api
    at = open_page("screens/runs.py", experiment="modes")
    run_id = modes.runs[("none", 0)]
    at.selectbox(key="answers_run").set_value(run_id).run()
    summary = api.run_detail(run_id)["summary"]
    assert summary["per_label_accuracy"] == {"a": 1.0, "b": 0.0}

    per_label = chart(at, "per_label_accuracy")
    [bars] = chart_traces(per_label, "bar")
    assert decode(bars["x"]) == ["a", "b"] and decode(bars["y"]) == [1.0, 0.0]
    lines = {shape["name"]: (shape["y0"], shape["y1"]) for shape in per_label["layout"]["shapes"]}
    assert lines == {"run accuracy": (0.5, 0.5), "majority baseline (always 'a')": (0.5, 0.5)}
    assert summary["majority_baseline"] == 0.5

    spread = {t["name"]: dict(zip(decode(t["x"]), decode(t["y"])))
              for t in chart_traces(chart(at, "answer_distribution"), "bar")}
    assert spread == {"predicted": {"a": 1.0, "b": 0.0}, "gold": {"a": 0.5, "b": 0.5}}
    assert f"Run #{run_id}: not distinguishable from a constant answer" in texts(at)
    assert {m.label: m.value for m in at.metric}["Majority baseline"] == "0.500"

    at.selectbox(key="answers_run").set_value(modes.runs[("after", 0)]).run()
    [bars] = chart_traces(chart(at, "per_label_accuracy"), "bar")
    assert decode(bars["y"]) == [0.9, 1.0]                  # seed 0 gets e0 (gold 'a') wrong
    assert "not distinguishable from a constant answer" not in texts(at)


def test_runs_page_shows_the_chosen_runs_history(tmp_path, monkeypatch):
    from worker import api, state
    use_fresh_database(tmp_path, monkeypatch)
    [run_id] = api.submit_matrix({"name": "hist", "base": BASE, "factors": {"seed": [0]}})["queued"]
    said = ("checkpoint at step 10 is corrupt or incomplete: /a/run-1/checkpoint/checkpoint-10/state.pt does "
            "not match its manifest's sha256; moved it aside to /a/run-1/checkpoint/checkpoint-10.corrupt-1; "
            "resuming from the previous good checkpoint, step 5 (/a/run-1/checkpoint/checkpoint-5)")
    with api.session() as s:
        state.add_events(s, run_id, [{"kind": "checkpoint_corrupt", "message": said}], attempt=1)
    at = open_page("screens/runs.py", experiment="hist")
    assert f"History of run #{run_id}" in texts(at)
    assert f"attempt 1: {said}" in [c.value for c in at.caption]
