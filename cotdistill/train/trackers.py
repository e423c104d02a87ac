"""Mirror a run to the trackers a lab already uses: TensorBoard event files, MLflow, W&B (offline).

    COTDISTILL_TRACKERS=tensorboard,mlflow cotdistill run configs/cqa-after.yaml
    cotdistill run configs/cqa-after.yaml --track tensorboard        # one run
    tracking: [mlflow]                                               # in a run config or a matrix base

Off by default. Each tracker receives the run's config once, every logged training step (loss, lr,
tokens/s, as in metrics.jsonl) and the final numeric summary (accuracy, final loss, ...):
- `tensorboard`: event files under the run folder's `tensorboard/` (torch.utils.tensorboard);
- `mlflow`: a run in the experiment `cotdistill` at $COTDISTILL_MLFLOW_URI, default a file store
  under $COTDISTILL_HOME/mlruns (no server, no network; MLflow 3 keeps that store in maintenance mode,
  so MLFLOW_ALLOW_FILE_STORE is set for it), params = the config flattened to dotted keys;
- `wandb`: an offline run under the run folder (`wandb sync` uploads it later), only where the
  `wandb` package is installed.
The tracker libraries are imported only when asked for. A tracker that fails while the run goes on
is dropped with a warning: mirroring never stops a training run.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Callable

from cotdistill.config import TRACKER_KINDS as KINDS

ENV = "COTDISTILL_TRACKERS"
MLFLOW_EXPERIMENT = "cotdistill"
PARAM_CHARS = 500                      # MLflow's smallest param value limit across its versions


def requested(value: str | None = None) -> list[str]:
    """The tracker names of `value` (default: $COTDISTILL_TRACKERS), comma-separated; refuses an
    unknown name, and wandb where the package is not installed."""
    value = os.environ.get(ENV, "") if value is None else value
    names = list(dict.fromkeys(n.strip().lower() for n in value.split(",") if n.strip()))
    unknown = [n for n in names if n not in KINDS]
    if unknown:
        raise ValueError(f"{ENV}/--track names unknown tracker(s) {', '.join(unknown)}; "
                         f"choose from {', '.join(KINDS)}")
    if "wandb" in names:
        import importlib.util
        if importlib.util.find_spec("wandb") is None:
            raise ValueError("tracker wandb asked for, but the `wandb` package is not installed "
                             "(pip install wandb), or leave it out of the tracker list")
    return names


def flatten(config: dict, prefix: str = "") -> dict[str, str]:
    """{'train': {'lr': 0.001}} -> {'train.lr': '0.001'}; lists and None as JSON."""
    out = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value if isinstance(value, str) else json.dumps(value, default=str)
    return out


def final_metrics(summary: dict) -> dict[str, float]:
    """The summary's finite numbers (bools left out): accuracy, final_loss, train_seconds, ..."""
    return {k: float(v) for k, v in summary.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


# ------------------------------------------------------------------------------------------ trackers

class TensorBoard:
    def __init__(self, config: dict, run_dir: Path, name: str):
        from torch.utils.tensorboard import SummaryWriter
        self.writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))
        self.writer.add_text("config", "```\n" + json.dumps(config, indent=2, default=str) + "\n```", 0)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            self.writer.add_scalar(f"train/{key}", value, step)

    def finish(self, summary: dict, step: int) -> None:
        for key, value in final_metrics(summary).items():
            self.writer.add_scalar(f"final/{key}", value, step)
        self.writer.close()


def mlflow_uri() -> str:
    uri = os.environ.get("COTDISTILL_MLFLOW_URI")
    if uri:
        return uri
    from cotdistill.paths import home
    return (home() / "mlruns").resolve().as_uri()


class MLflow:
    def __init__(self, config: dict, run_dir: Path, name: str):
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient
        uri = mlflow_uri()
        if uri.startswith("file:") or "://" not in uri:
            # MLflow 3 keeps its file store in maintenance mode behind this opt-in; it is the default
            # here because it needs no server and no database (set COTDISTILL_MLFLOW_URI for those).
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.client = MlflowClient(tracking_uri=uri)
        found = self.client.get_experiment_by_name(MLFLOW_EXPERIMENT)
        experiment_id = found.experiment_id if found else self.client.create_experiment(MLFLOW_EXPERIMENT)
        self.run_id = self.client.create_run(experiment_id, run_name=name,
                                             tags={"cotdistill.run_dir": str(run_dir)}).info.run_id
        params = [Param(k, v[:PARAM_CHARS]) for k, v in sorted(flatten(config).items())]
        for start in range(0, len(params), 100):             # MLflow takes at most 100 params a batch
            self.client.log_batch(self.run_id, params=params[start:start + 100])

    def _metrics(self, metrics: dict[str, float], step: int, prefix: str) -> None:
        import time
        from mlflow.entities import Metric
        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(f"{prefix}{k}", v, now, step) for k, v in metrics.items()])

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self._metrics(metrics, step, "")

    def finish(self, summary: dict, step: int) -> None:
        self._metrics(final_metrics(summary), step, "final_")
        self.client.set_terminated(self.run_id, "FINISHED")


class WandB:
    def __init__(self, config: dict, run_dir: Path, name: str):
        import wandb
        self.run = wandb.init(mode="offline", dir=str(run_dir), project="cotdistill", name=name, config=config)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.run.log(metrics, step=step)

    def finish(self, summary: dict, step: int) -> None:
        self.run.summary.update(final_metrics(summary))
        self.run.finish()


TRACKERS: dict[str, Callable] = {"tensorboard": TensorBoard, "mlflow": MLflow, "wandb": WandB}


class Mirror:
    """The requested trackers of one run; calls that fail drop the tracker with a warning."""

    def __init__(self, names: list[str], config: dict, run_dir: Path, name: str):
        self.active: dict[str, object] = {}
        self.step = 0
        for tracker in names:
            self._call(tracker, lambda: self.active.__setitem__(tracker, TRACKERS[tracker](config, run_dir, name)))

    def _call(self, tracker: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as e:                  # mirroring never stops a training run
            warnings.warn(f"tracker {tracker} stopped mirroring this run: {type(e).__name__}: {e}", stacklevel=2)
            self.active.pop(tracker, None)

    def log(self, step: int, metrics: dict[str, float]) -> None:
        self.step = step
        finite = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}
        for tracker, t in list(self.active.items()):
            self._call(tracker, lambda: t.log(step, finite))

    def finish(self, summary: dict) -> None:
        for tracker, t in list(self.active.items()):
            self._call(tracker, lambda: t.finish(summary, self.step))


def open_mirror(config: dict, run_dir: Path, name: str, names: list[str] | None = None) -> Mirror | None:
    """A Mirror of the named trackers (default: $COTDISTILL_TRACKERS), or None when none is asked for."""
    names = requested() if names is None else names
    return Mirror(names, config, run_dir, name) if names else None
