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
    # The procedure: the unit is the seed pair, two differences of +0.5 (no spread: an exact t of infinity).
    assert result["procedure"]["per_pair_diff"] == [0.5, 0.5] and result["procedure"]["n_pairs"] == 2
    assert (result["diff"], result["low"], result["high"], result["p_value"]) == (0.5, 0.5, 0.5, 0.0)
    # The test set: seeds are repeated measurements of the same 4 items, not 8 items: per-item mean
    # differences (0, 1/2, 1, 1/2) give an exact sign-flip p of P(|T| >= 4) = 2/8 (pooling gave 0.125).
    assert result["n_items"] == 4
    assert (result["a_only"], result["b_only"]) == (4, 0)
    assert result["test_set"]["p_value"] == pytest.approx(0.25)
    assert result["budget"]["sign_flip_floor"] == 0.5 and result["budget"]["detectable"] is None
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


def complete(api, run_id: int, letter: list[bool], text: list[bool] | None = None) -> None:
    """Finish a run as a worker would: scored (letter, and text in by_mode) when `text` is given,
    else evaluated by generation (no scoring modes)."""
    from worker import state
    with api.session() as s:
        assert state.claim(s, run_id, "w:1")
        records = [{"example_id": f"e{i}", "predicted": "a", "correct": c, "gold": "a"} for i, c in enumerate(letter)]
        summary = {"accuracy": sum(letter) / len(letter), "eval_mode": "score" if text else "generate"}
        if text:
            for r, t in zip(records, text):
                r.update(scoring="letter", by_mode={"letter": {"predicted": "a", "correct": r["correct"]},
                                                    "text": {"predicted": "b", "correct": t}})
            summary.update(scoring="letter", accuracy_by_mode={"letter": summary["accuracy"], "text": sum(text) / len(text)})
        assert state.complete(s, run_id, "w:1", summary, records)


def items(n_right: int, n: int = 10) -> list[bool]:
    return [True] * n_right + [False] * (n - n_right)


def test_arms_that_differ_only_in_n_train_are_two_arms_in_compare(api):
    base = {**BASE, "data": {**BASE["data"], "n_train": 40}, "eval": {**BASE["eval"], "mode": "auto"}}
    ids = api.submit_matrix({"name": "sweep", "base": base, "factors": {
        "variant": [{"placement": "none"}, {"placement": "after"}, {"placement": "after", "data.n_train": 30}],
        "seed": [0, 1]}})["queued"]
    runs = {(r["arm"], r["seed"]): r["id"] for r in api.list_runs(experiment="sweep")}
    assert sorted(runs) == [("after · n_train=30", 0), ("after · n_train=30", 1), ("after · n_train=40", 0),
                            ("after · n_train=40", 1), ("none · n_train=40", 0), ("none · n_train=40", 1)]
    right = {"none · n_train=40": 3, "after · n_train=40": 6, "after · n_train=30": 4}
    for (arm, seed), run_id in runs.items():
        complete(api, run_id, items(right[arm] + seed), items(5))
    arms = {a["arm"]: a for a in api.compare(ids)}
    assert sorted(arms) == ["after · n_train=30", "after · n_train=40", "none · n_train=40"]
    assert arms["after · n_train=30"]["accuracies"] == [0.4, 0.5] and arms["after · n_train=40"]["accuracies"] == [0.6, 0.7]
    assert len({a["arm_key"] for a in arms.values()}) == 3 and all(a["protocol"] == "scoring (letter)" for a in arms.values())


def test_the_scoring_switch_keeps_generated_arms_and_the_holm_family(api):
    base = {**BASE, "eval": {**BASE["eval"], "mode": "auto"}}
    ids = api.submit_matrix({"name": "protocols", "base": base,
                             "factors": {"placement": ["none", "after", "before"], "seed": [0, 1, 2]}})["queued"]
    runs = {(r["placement"], r["seed"]): r["id"] for r in api.list_runs(experiment="protocols")}
    letter = {"none": (3, 4, 3), "after": (6, 5, 7), "before": (5, 7, 6)}
    text = {"none": (5, 5, 6), "after": (6, 6, 6)}
    for (placement, seed), run_id in runs.items():
        complete(api, run_id, items(letter[placement][seed]),
                 items(text[placement][seed]) if placement in text else None)
    for scoring in (None, "text"):
        arms = {a["placement"]: a for a in api.compare(ids, scoring=scoring)}
        assert sorted(arms) == ["after", "before", "none"]
        assert arms["before"]["accuracies"] == [0.5, 0.7, 0.6] and arms["before"]["protocol"] == "generation"
        assert arms["before"]["note"] == (api.runs.GENERATED_NOTE if scoring else None)
        assert arms["after"]["protocol"] == f"scoring ({scoring or 'letter'})"
        found = api.versus_reference(ids, "none", scoring=scoring, n_boot=200)
        assert found["reference"] == "none" and found["family"] == 2 and found["test_family"] == 2
        rows = {r["arm"]: r for r in found["rows"]}
        assert [r["arm"] for r in found["rows"]][0] == "none" and rows["none"]["is_reference"]
        from cotdistill.report import holm
        from cotdistill.stats.inference import procedure_diff
        # before (generated) against none under this scoring: the generated accuracy stays
        want = procedure_diff([(letter["before"][s] - (text if scoring else letter)["none"][s]) / 10 for s in range(3)])
        assert rows["before"]["diff"] == pytest.approx(want.estimate) and rows["before"]["p_value"] == pytest.approx(want.p_value)
        assert [rows[a]["p_holm"] for a in ("after", "before")] == \
            pytest.approx(holm([rows["after"]["p_value"], rows["before"]["p_value"]]))
    with pytest.raises(ValueError, match="'nothing' is not an arm of these runs; the arms are"):
        api.versus_reference(ids, "nothing")


def test_one_seed_pair_needs_two_seeds_and_keeps_the_test_set_verdict(api):
    ids = api.submit_matrix(matrix("single", ["none", "after"], [0]))["queued"]
    runs = {r["placement"]: r["id"] for r in api.list_runs(experiment="single")}
    complete(api, runs["none"], items(2), items(2))
    complete(api, runs["after"], items(9), items(9))
    result = api.paired([runs["after"]], [runs["none"]], n_boot=200)
    assert result["verdict"] == "needs ≥ 2 seeds" and result["diff"] == pytest.approx(0.7)
    assert result["low"] is None and result["high"] is None and result["p_value"] is None
    assert result["test_set"]["p_value"] == pytest.approx(2 / 2 ** 7)         # McNemar: 7 discordant, all one way
    assert result["budget"]["sign_flip_floor"] == 1.0
    found = api.versus_reference(ids, None, n_boot=200)
    row = next(r for r in found["rows"] if r["arm"] == "after")
    assert found["reference"] == "none" and found["family"] == 0 and found["test_family"] == 1
    assert (row["verdict"], row["p_holm"], row["significant"]) == ("needs ≥ 2 seeds", None, None)
    assert row["test_p_holm"] == pytest.approx(2 / 2 ** 7)
