"""Training curves through the job system: a real worker run writes the per-step label, rationale and
total loss, tokens seen, epoch and validation accuracy rows, and api.curves reads them against steps,
epochs or tokens."""

from pathlib import Path

import pytest
import yaml

from tests.worker.stack import BASE, JobStack


@pytest.fixture
def api(tmp_path, monkeypatch):
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path))
    monkeypatch.setenv("COTDISTILL_DATABASE_URL", f"sqlite:///{tmp_path / 'api.db'}")
    from worker import api
    from worker.db import upgrade
    upgrade(f"sqlite:///{tmp_path / 'api.db'}")          # as `db upgrade` or `up` would
    return api


def test_curves_read_against_steps_epochs_and_tokens(api):
    from worker import state
    [run_id] = api.submit_matrix({"name": "c", "base": BASE, "factors": {"seed": [0]}})["queued"]
    with api.session() as s:
        assert state.claim(s, run_id, "w:1")
        state.add_metrics(s, run_id, [
            {"step": 2, "name": "label_loss", "value": 1.5}, {"step": 2, "name": "tokens", "value": 300.0},
            {"step": 2, "name": "epoch", "value": 0.5}, {"step": 4, "name": "label_loss", "value": 0.5},
            {"step": 4, "name": "tokens", "value": 610.0}, {"step": 4, "name": "epoch", "value": 1.0},
            {"step": 6, "name": "label_loss", "value": 0.25}])         # no x recorded at step 6
    assert [(p["step"], p["x"], p["value"]) for p in api.curves([run_id], "label_loss")] == \
        [(2, 2, 1.5), (4, 4, 0.5), (6, 6, 0.25)]
    assert [(p["x"], p["value"]) for p in api.curves([run_id], "label_loss", x="tokens")] == \
        [(300.0, 1.5), (610.0, 0.5)]
    assert [(p["x"], p["value"]) for p in api.curves([run_id], "label_loss", x="epoch")] == [(0.5, 1.5), (1.0, 0.5)]
    with pytest.raises(ValueError, match=r"^curves: x must be one of step, epoch, tokens, not 'seconds'$"):
        api.curves([run_id], "label_loss", x="seconds")


def test_a_real_run_writes_label_rationale_total_loss_and_validation_accuracy(tmp_path, monkeypatch):
    from cotdistill.config import RunConfig, from_dict
    from cotdistill.run import load_examples, validation_examples
    from worker import api
    stack = JobStack(tmp_path, monkeypatch)
    stack.start_worker("w1")
    try:
        base = yaml.safe_load(yaml.safe_dump(BASE))
        base["train"].update(steps=8, log_every=2)
        base["eval"].update(every=4, val_size=6)
        base["student"]["max_length"] = 128        # at BASE's 64 every rationale is cut away
        ids = api.submit_matrix({"name": "curves", "base": base,
                                 "factors": {"placement": ["none", "after"]}})["queued"]
        stack.wait(ids, "succeeded", timeout=300)
    finally:
        stack.close()
    for run in api.list_runs(run_ids=ids):
        run_id = run["id"]
        names = {"loss", "label_loss", "tokens", "epoch"} | ({"rationale_loss"} if run["placement"] == "after" else set())
        for name in names:
            assert [p["step"] for p in api.curves([run_id], name)] == [2, 4, 6, 8], (run["placement"], name)
        if run["placement"] == "none":
            assert api.curves([run_id], "rationale_loss") == []
            # label only: the label and the end of text are supervised, so the total is not the label loss
        total, label = (api.curves([run_id], n) for n in ("loss", "label_loss"))
        assert all(a["value"] != b["value"] for a, b in zip(total, label))
        assert all(p["value"] > 0 for p in label)
        tokens = [p["value"] for p in api.curves([run_id], "tokens")]
        assert tokens == sorted(tokens) and tokens[0] > 0
        # 48 training sequences in batches of 8: 6 steps an epoch.
        assert [p["value"] for p in api.curves([run_id], "epoch")] == pytest.approx([2 / 6, 4 / 6, 1, 8 / 6])
        val = api.curves([run_id], "val_accuracy", x="tokens")
        assert [p["step"] for p in val] == [4, 8] and all(p["value"] * 6 == round(p["value"] * 6) for p in val)
        assert val[1]["x"] == tokens[3]
        # The last validation scores the final model on its 6 items: the run's own answers on them agree.
        cfg = from_dict(RunConfig, api.run_detail(run_id)["config"])
        wanted = {ex.id for ex in validation_examples(cfg, load_examples(cfg)[1])}
        answers = [p["correct"] for p in api.predictions([run_id]) if p["example_id"] in wanted]
        assert len(answers) == 6 and val[1]["value"] == pytest.approx(sum(answers) / 6)


def test_an_untouched_student_run_goes_through_the_job_system_with_no_curve(tmp_path, monkeypatch):
    """train.steps [10, 0] for placements none and before: the worker runs the untouched cells (one per
    protocol) without training; they succeed with no curve point, their summary says so and records its
    environment, the duration estimate and the run listing cope with them."""
    from worker import api
    stack = JobStack(tmp_path, monkeypatch)
    stack.start_worker("w1")
    try:
        base = yaml.safe_load(yaml.safe_dump(BASE))
        base["eval"].update(max_new_tokens=16)
        ids = api.submit_matrix({"name": "untouched", "base": base,
                                 "factors": {"placement": ["none", "before"], "train.steps": [0]}})["queued"]
        runs = stack.wait(ids, "succeeded", timeout=300)
    finally:
        stack.close()
    assert len(ids) == 2
    for run in api.list_runs(run_ids=ids):
        detail = api.run_detail(run["id"])
        s = detail["summary"]
        assert s["fine_tuned"] is False and s["train_steps"] == 0 and s["n"] == 12
        assert s["eval_mode"] == ("generate" if run["placement"] == "before" else "score")
        assert set(s["environment"]) == {"threads", "torch", "transformers", "python", "device"}
        assert all(api.curves([run["id"]], name) == [] for name in ("loss", "label_loss", "tokens"))
        folder = Path(detail["artifact_uri"])
        assert (folder / "metrics.jsonl").read_text() == "" and not (folder / "checkpoint").exists()
        assert runs[run["id"]]["status"] == "succeeded"
    assert api.experiment_estimate("untouched")["runs_left"] == 0
