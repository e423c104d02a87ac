"""The jobs API on a real SQLite file, rows written through the state transitions a worker uses."""

import pytest

from tests.worker.stack import BASE


@pytest.fixture
def api(tmp_path, monkeypatch):
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path))
    monkeypatch.setenv("COTDISTILL_DATABASE_URL", f"sqlite:///{tmp_path / 'api.db'}")
    from worker import api
    from worker.db import upgrade
    upgrade(f"sqlite:///{tmp_path / 'api.db'}")             # as `db upgrade` does
    return api


def finish(api, run_id: int, correct: list[bool], predicted: list[str] | None = None) -> None:
    """What a worker does: claim, then complete with one prediction per test example."""
    from worker import state
    predicted = predicted or ["a"] * len(correct)
    with api.session() as s:
        assert state.claim(s, run_id, "w:1")
        state.add_metrics(s, run_id, [{"step": 2, "name": "loss", "value": 1.5},
                                      {"step": 4, "name": "loss", "value": 0.5}])
        records = [{"example_id": f"e{i}", "predicted": p, "correct": c, "gold": "a", "scores": {"a": -1.0}}
                   for i, (c, p) in enumerate(zip(correct, predicted))]
        assert state.complete(s, run_id, "w:1", {"accuracy": sum(correct) / len(correct)}, records)


def matrix(name: str, placements: list[str], seeds: list[int]) -> dict:
    return {"name": name, "base": BASE, "factors": {"placement": placements, "seed": seeds}}


def test_cells_reuse_compare_and_paired(api):
    first = api.submit_matrix(matrix("first", ["none", "after"], [0, 1]))
    assert len(first["queued"]) == 4
    runs = {(r["placement"], r["seed"]): r["id"] for r in api.list_runs(experiment="first")}
    finish(api, runs[("none", 0)], [True, False, False, False])
    finish(api, runs[("none", 1)], [True, True, False, False])
    finish(api, runs[("after", 0)], [True, True, True, False])
    finish(api, runs[("after", 1)], [True, True, True, True])
    # A second experiment whose `after` cells already succeeded reuses them and lists them as its own.
    second = api.submit_matrix(matrix("second", ["after", "before"], [0, 1]))
    assert len(second["reused"]) == 2 and len(second["queued"]) == 2
    cells = api.list_runs(experiment="second")
    assert sorted((r["placement"], r["status"]) for r in cells) == \
        [("after", "succeeded")] * 2 + [("before", "queued")] * 2
    listed = {e["name"]: e for e in api.list_experiments()}
    assert listed["second"]["counts"] == {"succeeded": 2, "queued": 2}

    arms = {a["placement"]: a for a in api.compare(list(runs.values()))}
    assert arms["none"]["accuracies"] == [0.25, 0.5] and arms["none"]["mean"] == pytest.approx(0.375)
    assert arms["after"]["mean"] == pytest.approx(0.875) and arms["after"]["n_seeds"] == 2
    assert arms["after"]["low"] < 0.875 < arms["after"]["high"]

    result = api.paired([runs[("after", 0)], runs[("after", 1)]], [runs[("none", 0)], runs[("none", 1)]],
                        n_boot=500)
    # Seeds are repeated measurements of the same 4 items, not 8 items: per-item mean differences
    # (0, 1/2, 1, 1/2) give an exact sign-flip p of P(|T| >= 4) = 2/8 (pooling the pairs gave 0.125).
    assert result["n_items"] == 4 and result["diff"] == pytest.approx(0.5)
    assert (result["a_only"], result["b_only"]) == (4, 0)
    assert result["p_value"] == pytest.approx(0.25)
    assert [(p["seed"], p["diff"], p["a_only"], p["b_only"]) for p in result["per_pair"]] == \
        [(0, 0.5, 2, 0), (1, 0.5, 2, 0)]
    assert [p["p_value"] for p in result["per_pair"]] == [0.5, 0.5]
    assert result["unmatched_seeds"] == {"a": [], "b": []}
    fixes = {e["example_id"]: (e["fixes"], e["consistent"]) for e in result["examples"]}
    assert fixes == {"e1": (1, False), "e2": (2, True), "e3": (1, False)}
    assert result["basis"]["warning"]                    # every arm answered "a" on every item

    assert [p["step"] for p in api.curves([runs[("none", 0)]])] == [2, 4]
    preds = api.predictions([runs[("none", 0)]])
    assert [p["correct"] for p in preds] == [True, False, False, False] and preds[0]["gold"] == "a"


def test_cancel_retry_and_requeue_failed(api):
    from worker import state
    [a, b] = api.submit_matrix(matrix("ops", ["none"], [0, 1]))["queued"]
    assert api.cancel(a) == "cancelled"
    assert api.retry(a)["queued"] and api.run_detail(a)["attempt"] == 1
    assert not api.retry(b)["queued"]                   # queued: nothing to retry
    with api.session() as s:
        assert state.claim(s, b, "w:1")
        assert state.finish(s, b, "w:1", "failed", error="boom")
    assert api.run_detail(b)["error"] == "boom"
    assert api.requeue_failed("ops") == [b]
    assert api.run_detail(b)["status"] == "queued" and api.run_detail(b)["error"] is None
    with pytest.raises(api.NotFound):
        api.cancel(999)
    with pytest.raises(api.NotFound):
        api.list_runs(experiment="nope")


def test_compare_and_paired_switch_scoring_mode(api):
    from worker import state
    ids = api.submit_matrix(matrix("modes", ["none", "after"], [0]))["queued"]
    with api.session() as s:
        for run_id, letter, text in ((ids[0], [True, False], [True, True]), (ids[1], [False, False], [True, False])):
            assert state.claim(s, run_id, "w:1")
            records = [{"example_id": f"e{i}", "predicted": "a", "correct": lc, "gold": "a", "scoring": "letter",
                        "by_mode": {"letter": {"predicted": "a", "correct": lc},
                                    "text": {"predicted": "b", "correct": tc}}}
                       for i, (lc, tc) in enumerate(zip(letter, text))]
            summary = {"accuracy": sum(letter) / 2, "scoring": "letter",
                       "accuracy_by_mode": {"letter": sum(letter) / 2, "text": sum(text) / 2}}
            assert state.complete(s, run_id, "w:1", summary, records)
    by_letter = {a["placement"]: a["mean"] for a in api.compare(ids)}
    by_text = {a["placement"]: a["mean"] for a in api.compare(ids, scoring="text")}
    assert by_letter == {"none": 0.5, "after": 0.0} and by_text == {"none": 1.0, "after": 0.5}
    assert api.paired([ids[0]], [ids[1]], n_boot=100)["diff"] == 0.5
    assert api.paired([ids[0]], [ids[1]], n_boot=100, scoring="text")["diff"] == 0.5
    assert api.paired([ids[0]], [ids[1]], n_boot=100, scoring="text")["examples"] == \
        [{"example_id": "e1", "fixes": 1, "breaks": 0, "pairs": 1, "consistent": True}]
