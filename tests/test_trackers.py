"""Tracker mirroring: TensorBoard event files read back with tensorboard's EventAccumulator, an
MLflow run in a temporary file store, and a real (tiny) run mirrored through the runner's callback."""

import dataclasses
import json
import warnings

import pytest

from cotdistill.train import trackers

CONFIG = {"data": {"name": "synthetic", "n_train": 8, "options": {}}, "seed": 3, "tags": ["a", None]}


def scalars(log_dir) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {tag: [(e.step, round(e.value, 6)) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_requested_names_and_refusals(monkeypatch):
    monkeypatch.delenv(trackers.ENV, raising=False)
    assert trackers.requested() == []
    monkeypatch.setenv(trackers.ENV, " TensorBoard, mlflow,tensorboard ")
    assert trackers.requested() == ["tensorboard", "mlflow"]
    with pytest.raises(ValueError, match="unknown tracker\\(s\\) neptune; choose from tensorboard, mlflow, wandb"):
        trackers.requested("mlflow,neptune")
    assert trackers.open_mirror({}, ".", "x", []) is None
    from cotdistill.errors import ConfigError
    from cotdistill.config import RunConfig
    with pytest.raises(ConfigError, match=r"^tracking must be a list of tracker names from tensorboard, mlflow, "
                                          r"wandb, not \['neptune'\]$"):
        RunConfig(tracking=["neptune"])


def test_flatten_and_final_metrics_exact():
    assert trackers.flatten(CONFIG) == {"data.name": "synthetic", "data.n_train": "8", "data.options": "{}",
                                        "seed": "3", "tags": '["a", null]'}
    assert trackers.final_metrics({"accuracy": 0.5, "n": 12, "collapsed": False, "loss": float("nan"),
                                   "student": "tiny"}) == {"accuracy": 0.5, "n": 12.0}


def test_tensorboard_events_hold_the_curve_final_metrics_and_config(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    mirror = trackers.Mirror(["tensorboard"], CONFIG, tmp_path, "run-1")
    mirror.log(5, {"loss": 2.5, "lr": 0.001, "tokens_per_s": None})
    mirror.log(10, {"loss": 1.25, "lr": 0.0005})
    mirror.finish({"accuracy": 0.75, "final_loss": 1.25, "collapsed": False})
    assert scalars(tmp_path / "tensorboard") == {"train/loss": [(5, 2.5), (10, 1.25)],
                                                 "train/lr": [(5, 0.001), (10, 0.0005)],
                                                 "final/accuracy": [(10, 0.75)], "final/final_loss": [(10, 1.25)]}
    acc = EventAccumulator(str(tmp_path / "tensorboard"))
    acc.Reload()
    assert '"n_train": 8' in acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()


def test_mlflow_run_in_a_file_store_has_params_and_metrics(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("COTDISTILL_MLFLOW_URI", uri)
    mirror = trackers.Mirror(["mlflow"], CONFIG, tmp_path / "run", "run-1")
    mirror.log(5, {"loss": 2.5})
    mirror.log(10, {"loss": 1.25})
    mirror.finish({"accuracy": 0.75})
    client = MlflowClient(tracking_uri=uri)
    [run] = client.search_runs([client.get_experiment_by_name("cotdistill").experiment_id])
    assert run.info.run_name == "run-1" and run.info.status == "FINISHED"
    assert run.data.params == trackers.flatten(CONFIG)
    assert run.data.metrics == {"loss": 1.25, "final_accuracy": 0.75}
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "loss")] == [(5, 2.5), (10, 1.25)]
    assert run.data.tags["cotdistill.run_dir"] == str(tmp_path / "run")


def test_a_failing_tracker_is_dropped_with_a_warning(tmp_path, monkeypatch):
    class Broken:
        def __init__(self, *args):
            pass

        def log(self, step, metrics):
            raise OSError("disk full")
    monkeypatch.setitem(trackers.TRACKERS, "mlflow", Broken)
    mirror = trackers.Mirror(["mlflow"], CONFIG, tmp_path, "run-1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mirror.log(1, {"loss": 1.0})
    assert mirror.active == {} and "tracker mlflow stopped mirroring this run: OSError: disk full" in str(caught[0].message)


def test_a_run_is_mirrored_through_the_runner_only_when_asked(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient
    from cotdistill.config import RunConfig, from_dict
    from cotdistill.run import run
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("COTDISTILL_MLFLOW_URI", raising=False)
    monkeypatch.delenv(trackers.ENV, raising=False)
    cfg = from_dict(RunConfig, {"data": {"name": "synthetic", "n_train": 16, "n_test": 6},
                                "student": {"size": "tiny", "vocab_size": 300},
                                "train": {"steps": 4, "log_every": 2, "batch_size": 4}, "seed": 0})
    run(cfg, tmp_path / "plain")
    assert not (tmp_path / "plain" / "tensorboard").exists() and not (tmp_path / "home" / "mlruns").exists()
    # per deployment (the environment) and per run (the config's `tracking`, outside the config hash)
    monkeypatch.setenv(trackers.ENV, "mlflow")
    tracked = dataclasses.replace(cfg, tracking=["tensorboard"])
    assert tracked.hash("cpu") == cfg.hash("cpu") and tracked.settings_hash() == cfg.settings_hash()
    summary = run(tracked, tmp_path / "mirrored")
    curve = [json.loads(line) for line in (tmp_path / "mirrored" / "metrics.jsonl").read_text().splitlines()]
    got = scalars(tmp_path / "mirrored" / "tensorboard")
    assert got["train/loss"] == [(r["step"], round(r["loss"], 6)) for r in curve] and [s for s, _ in got["train/loss"]] == [2, 4]
    assert got["final/accuracy"] == [(4, round(summary["accuracy"], 6))]
    client = MlflowClient(tracking_uri=(tmp_path / "home" / "mlruns").resolve().as_uri())
    [mirrored] = client.search_runs([client.get_experiment_by_name("cotdistill").experiment_id])
    assert mirrored.data.params["seed"] == "0" and mirrored.data.params["config_hash"] == summary["config_hash"]
    assert mirrored.data.metrics["final_accuracy"] == summary["accuracy"]
