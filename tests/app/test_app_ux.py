"""The small things a new user trips on: empty cells drawn as —, no Deploy button or developer menu,
elapsed time and the reason a run waits, relaunching an experiment, the expected duration."""

import math
import tomllib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from app import tables
from tests.app.apptest import open_page, texts, widget

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 3, 12, 0, 0, tzinfo=timezone.utc)


def at(seconds_ago: float | None) -> str | None:
    return None if seconds_ago is None else (NOW - timedelta(seconds=seconds_ago)).isoformat()


# ------------------------------------------------------------------------------------------ empty cells

def test_display_frame_turns_blanks_into_missing_values_and_keeps_the_rest():
    frame = tables.display_frame([{"a": "", "b": 1.5, "c": [1, 2], "d": "x"},
                                  {"a": "  ", "b": float("nan"), "c": [], "d": None}])
    assert frame["a"].tolist() == [None, None]
    assert frame["b"].tolist()[0] == 1.5 and math.isnan(frame["b"].tolist()[1])
    assert frame["c"].tolist() == [[1, 2], []]
    assert frame["d"].tolist() == ["x", None]
    source = pd.DataFrame({"a": ["", "y"]})
    tables.display_frame(source)
    assert source["a"].tolist() == ["", "y"]                   # the caller's frame is not changed


def test_no_page_draws_a_table_but_through_tables_show():
    import ast
    for path in sorted((ROOT / "app").rglob("*.py")):
        if path.name == "tables.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                on_st = isinstance(node.func.value, ast.Name) and node.func.value.id == "st"
                drawn = node.func.attr in ("dataframe", "data_editor") or (on_st and node.func.attr == "table")
                assert not drawn, f"{path.relative_to(ROOT)}:{node.lineno} draws a table itself: use tables.show"


# ------------------------------------------------------------------------------------------ toolbar

def test_deploy_button_and_developer_menu_are_hidden():
    from worker.stack import Stack
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["client"]["toolbarMode"] == "minimal"
    [app] = [cmd for name, cmd in Stack(workers=1).commands() if name == "app"]
    assert app[app.index("--client.toolbarMode") + 1] == "minimal"
    compose = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert '"--client.toolbarMode", "minimal"' in compose


# ------------------------------------------------------------------------------------------ elapsed

@pytest.mark.parametrize("run, expected", [
    ({"status": "queued", "created_at": at(300), "enqueued_at": at(75)}, (75.0, None)),
    ({"status": "queued", "created_at": at(300), "enqueued_at": None}, (300.0, None)),
    ({"status": "running", "created_at": at(100), "enqueued_at": at(100), "started_at": at(40)}, (60.0, 40.0)),
    ({"status": "succeeded", "created_at": at(500), "enqueued_at": at(500), "started_at": at(400),
      "finished_at": at(130)}, (100.0, 270.0)),
    ({"status": "cancelled", "created_at": at(90), "enqueued_at": at(90), "started_at": None,
      "finished_at": at(30)}, (60.0, None)),
    # retried after a failure, then cancelled before it started again: no run time of this attempt
    ({"status": "cancelled", "created_at": at(900), "enqueued_at": at(200), "started_at": at(800),
      "finished_at": at(100)}, (100.0, None)),
])
def test_elapsed_queued_then_running(run, expected):
    assert tables.elapsed(run, NOW) == expected


def test_elapsed_reads_naive_sqlite_times_as_utc():
    run = {"status": "running", "created_at": "2026-12-03T11:58:00", "enqueued_at": "2026-12-03T11:58:00",
           "started_at": "2026-12-03T11:59:00.500000"}
    assert tables.elapsed(run, NOW) == (60.5, 59.5)


def test_workers_line_and_capacity():
    workers = [{"name": "h:1", "queues": ["gpu"], "concurrency": 2, "alive": True},
               {"name": "h:2", "queues": ["cpu"], "concurrency": 1, "alive": True},
               {"name": "h:3", "queues": ["gpu"], "concurrency": 1, "alive": False}]
    assert tables.workers_line(workers) == "Workers: h:1 (gpu, 2 at once), h:2 (cpu). 1 more went silent (no heartbeat)."
    assert tables.live_capacity(workers) == 2 and tables.live_capacity(workers, "cpu") == 1
    assert tables.workers_line([]) == "No live worker."


# ------------------------------------------------------------------------------------------ relaunch

EXPERIMENT = {
    "name": "sweep",
    "base": {"data": {"n_train": 500, "n_test": 100, "rationale_filter": "teacher_correct",
                      "options": {"n_items": 3}},
             "train": {"steps": 300, "batch_size": 16, "lr": 0.001, "warmup_steps": 20, "grad_accum": 2},
             "eval": {"mode": "score", "n_boot": 500}, "rationale_weight": 0.5},
    "factors": {"data.name": ["synthetic-count"],
                "student": [{"name": "tiny", "size": "small", "vocab_size": 512, "max_length": 96},
                            {"name": "smollm2-135m", "max_length": 96}, {"name": "Qwen/Qwen2.5-0.5B"}],
                "placement": ["none", "after"],
                "perturbation": [{"kind": "none"}, {"kind": "mask", "level": "word", "params": {"p": 0.3, "mode": "replace"}},
                                 {"kind": "mask", "level": "word", "params": {"p": 0.6, "mode": "replace"}},
                                 {"kind": "truncate", "params": {"k": 4}}],
                "seed": [0, 1, 2], "train.lr": [0.001, 0.003]},
}


def test_form_values_of_an_experiment():
    from app.matrix import form_values
    values = form_values(EXPERIMENT, pretrained=["smollm2-135m"])
    assert values == {
        "student_entries": EXPERIMENT["factors"]["student"], "name": "sweep", "source": "datasets", "datasets": ["synthetic-count"], "set_path": None,
        "train_split": None, "test_split": None, "options": {"n_items": 3}, "n_train": 500, "n_test": 100,
        "rationale_filter": "teacher_correct", "students": ["tiny:small", "smollm2-135m"],
        "hub_id": "Qwen/Qwen2.5-0.5B", "vocab_size": 512, "max_length": 96, "placements": ["none", "after"],
        "perturbations": ["none", "mask", "truncate"],
        "perturbation_params": {"none": {"level": "token", "sweep": {}, "fixed": {}},
                                "mask": {"level": "word", "sweep": {"p": "0.3, 0.6"}, "fixed": {"mode": "replace"}},
                                "truncate": {"level": "token", "sweep": {"k": "4"}, "fixed": {}}},
        "seeds": "0, 1, 2", "steps": 300, "batch_size": 16, "lr": 0.001, "warmup_steps": 20,
        "eval_mode": "score", "loss_normalization": "token", "baseline": False, "ignored": ["train.lr"]}


def test_build_matrix_keeps_the_earlier_base_and_the_factors_the_form_cannot_edit():
    from app.matrix import build_matrix
    m = build_matrix("sweep-2", datasets=["synthetic-count"], students=[{"name": "tiny"}], placements=["after"],
                     perturbations=[{"kind": "none"}], seeds=[0], data={"n_train": 50}, train={"steps": 10},
                     eval={"mode": "auto"}, base=EXPERIMENT["base"], more_factors={"train.lr": [0.001, 0.003]})
    assert m["base"] == {"data": {"n_train": 50, "n_test": 100, "rationale_filter": "teacher_correct",
                                  "options": {"n_items": 3}},
                         "train": {"steps": 10, "batch_size": 16, "lr": 0.001, "warmup_steps": 20, "grad_accum": 2},
                         "eval": {"mode": "auto", "n_boot": 500}, "rationale_weight": 0.5}
    assert m["factors"] == {"train.lr": [0.001, 0.003], "data.name": ["synthetic-count"], "student": [{"name": "tiny"}],
                            "placement": ["after"], "perturbation": [{"kind": "none"}], "seed": [0]}


def test_with_earlier_keeps_student_settings_the_form_does_not_show():
    from app.matrix import with_earlier
    earlier = [{"name": "tiny", "size": "small", "vocab_size": 512, "dropout": 0.1}, {"name": "x/y", "lora": {"r": 8}}]
    assert with_earlier([{"name": "tiny", "size": "small", "vocab_size": 300}, {"name": "tiny", "size": "base"},
                         {"name": "x/y", "max_length": 64}], earlier) == [
        {"name": "tiny", "size": "small", "vocab_size": 300, "dropout": 0.1}, {"name": "tiny", "size": "base"},
        {"name": "x/y", "lora": {"r": 8}, "max_length": 64}]
    assert with_earlier([{"name": "tiny"}], None) == [{"name": "tiny"}]


@pytest.mark.parametrize("name, taken, expected", [
    ("exp", set(), "exp-2"), ("exp", {"exp-2", "exp-3"}, "exp-4"), ("exp-2", set(), "exp-3"),
    ("exp-20261203-101010", set(), "exp-20261203-101010-2"), ("a-b", set(), "a-b-2")])
def test_next_name(name, taken, expected):
    from app.matrix import next_name
    assert next_name(name, taken) == expected


# ------------------------------------------------------------------------------------------ duration

def est(**kw):
    return {"runs_left": 3, "running": 1, "workers": 2, "unknown": [], "work_s": 149.0, "remaining_s": 89.0, **kw}


def test_estimate_text():
    assert tables.estimate_text(est()) == "Expected to finish in about 1m 29s (3 runs left, 1 running, on 2 workers)."
    assert tables.estimate_text(est(remaining_s=None, workers=0)) == (
        "Expected duration: about 2m 29s of work for one worker (3 runs left, 1 running), but no worker is taking "
        "runs now.")
    assert tables.estimate_text(est(unknown=["synthetic-count · tiny · before"], remaining_s=None)) == (
        "Expected duration: unknown until one run has finished or a worker of queue `cpu` has timed this machine "
        "(3 runs left, 1 running; nothing measured yet for synthetic-count · tiny · before).")
    assert tables.estimate_text(est(unknown=["a · b · c"], measuring=["a · b · c"], remaining_s=None)) == (
        "Expected duration: a worker is timing a few training steps and test questions of a · b · c on this "
        "machine; the estimate follows (3 runs left, 1 running).")
    assert tables.estimate_text(est(ahead=4, calibrated=3)) == (
        "Expected to finish in about 1m 29s (from a calibration of this machine) (3 runs left, 1 running, on 2 "
        "workers, after 4 runs of other experiments ahead of it).")
    assert tables.estimate_text(est(running=0, ahead=1), planned=True) == (
        "Expected duration: about 1m 29s (3 new runs, on 2 workers, behind 1 run already queued or running).")
    assert tables.estimate_text(est(runs_left=0, running=0)) is None
    assert tables.estimate_text(est(running=0), planned=True) == "Expected duration: about 1m 29s (3 new runs, on 2 workers)."
    assert tables.estimate_text(est(running=0, unknown=["a · b · c"], remaining_s=None), planned=True) == (
        "Expected duration: unknown until one run has finished or a worker of queue `cpu` has timed this machine "
        "(3 new runs; nothing measured yet for a · b · c).")


# ------------------------------------------------------------------------------------------ the Runs page

def test_runs_page_says_why_runs_wait_and_how_long_they_will_take(tmp_path, monkeypatch):
    from tests.app.apptest import finish_run, frame_with, rerun_fresh, use_fresh_database
    from tests.worker.stack import BASE
    from worker import api, presence
    use_fresh_database(tmp_path, monkeypatch)
    base = {**BASE, "train": {**BASE["train"], "steps": 100}}
    ids = api.submit_matrix({"name": "wait", "base": base, "factors": {"seed": [0, 1]}})["queued"]

    at = open_page("screens/runs.py", experiment="wait")
    frame = frame_with(at, "waiting for", "queued for", "ran for").set_index("run")
    assert list(frame.loc[ids, "waiting for"]) == ["no worker for queue gpu"] * 2
    assert all(pd.isna(frame.loc[ids, "ran for"]))                    # drawn as —
    assert "No worker is taking training runs (queue `gpu`)" in texts(at)
    assert ("Expected duration: a worker is timing a few training steps and test questions of "
            "synthetic-count · tiny · after on this machine; the estimate follows (2 runs left, 0 running).") in texts(at)

    # one run finishes (as a worker would write it): 100 steps at 1,000 tokens/step and 2,000 tokens/s
    finish_run(ids[0], {"accuracy": 0.5, "tokens_per_s": 2000.0, "train_seconds": 50.0, "train_steps": 100,
                        "resumed_from_step": 0, "eval_seconds": 4.0}, [])
    at = rerun_fresh(at)
    frame = frame_with(at, "waiting for", "queued for", "ran for").set_index("run")
    assert pd.isna(frame.loc[ids[0], "waiting for"]) and frame.loc[ids[1], "waiting for"] == "no worker for queue gpu"
    expected = api.experiment_estimate("wait")
    # 100 steps × 1,000 tokens ÷ 2,000 tokens/s + 4 s of evaluation; no start-up time (the row's wall
    # time is shorter than its training time)
    assert expected["per_run_s"] == {ids[1]: 54.0} and expected["work_s"] == 54.0
    assert ("Expected duration: about 54s of work for one worker (1 run left, 0 running), "
            "but no worker is taking runs now") in texts(at)

    with api.session() as s:
        presence.announce(s, "gpu-host:1", ["gpu"])
    at = rerun_fresh(at)
    frame = frame_with(at, "waiting for", "queued for", "ran for").set_index("run")
    assert frame.loc[ids[1], "waiting for"] == "starting: a worker is free"
    assert "Expected to finish in about 54s (1 run left, 0 running, on 1 worker)." in texts(at)
    assert "Workers: gpu-host:1 (gpu)." in texts(at)
    assert "No worker is taking training runs" not in texts(at)


def test_teacher_page_says_why_a_generation_job_waits(tmp_path, monkeypatch):
    from tests.app.apptest import frame_with, use_fresh_database
    from worker import api
    use_fresh_database(tmp_path, monkeypatch)
    job = api.submit_generation({"name": "synthetic-count", "options": {"n_train": 4, "n_test": 2}, "splits": ["test"]},
                                {"kind": "http", "base_url": "http://127.0.0.1:9/v1", "model": "m", "api": "completions"})
    at = open_page("screens/teacher.py")
    frame = frame_with(at, "job", "waiting for").set_index("job")
    assert frame.loc[job, "waiting for"] == "no worker for queue gpu"
    assert "No worker is taking jobs (queue `gpu`)" in texts(at)
