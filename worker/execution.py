"""Execute one run: claim it, call the science core, turn its callback into rows, end it.

    execute(run_id, worker="host:pid")      # what the Celery task `cotdistill.run` calls

The training loop never waits on the database: the callback only records the latest progress in
memory, and a heartbeat thread writes it (with the training-curve rows) every couple of seconds.
The same thread notices a cancel request, or that another worker took the run over, and raises
the stop flag that the callback checks at every step. Checkpoints go to
$COTDISTILL_ARTIFACTS/run-<id>/ (default: $COTDISTILL_HOME/artifacts), so a retried or recovered
run resumes from its last good checkpoint; a corrupt one the core moved aside, and the step it resumed
from, go to the run's history (table run_events, `cotdistill show RUN`). A run succeeds only when its
folder is complete (cotdistill.runner.missing_artifact); otherwise it fails naming the missing path.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import traceback
from pathlib import Path
from typing import Callable, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from cotdistill.config import RunConfig, from_dict
from cotdistill.runner import ArtifactsMissing, check_artifacts, missing_artifact
from cotdistill.curves import curve_values
from cotdistill.students import home
from worker import state
from cotdistill.distributed import RanksLost
from worker.guard import check_config_paths
from worker.launch import GpuLocks, run_multi
from worker.models import Run, utcnow

log = logging.getLogger(__name__)
T = TypeVar("T")
HEARTBEAT_S = float(os.environ.get("COTDISTILL_HEARTBEAT", 2.0))
CHECKPOINT_EVERY = int(os.environ.get("COTDISTILL_CHECKPOINT_EVERY", 50))


class Stopped(Exception):
    """Raised from the progress callback to stop a run (cancelled, or no longer ours)."""


class HandBack(Exception):
    """Raised from the progress callback when the worker shuts down: the run goes back to the queue."""


# Set by the worker's shutdown signal (worker/tasks.py): the running run is handed back at its next
# step, with its checkpoint, instead of being finished or failed.
SHUTDOWN = threading.Event()


def artifacts_root() -> Path:
    return Path(os.environ.get("COTDISTILL_ARTIFACTS") or home() / "artifacts")


def run_dir(run_id: int) -> Path:
    return artifacts_root() / f"run-{run_id}"


class Heartbeat:
    """Holds the latest progress in memory; a thread writes it and a heartbeat every HEARTBEAT_S,
    and raises the stop flag when the row is cancelled or taken over. `check()` is what the work
    calls between steps."""

    def __init__(self, sessions: sessionmaker, row_id: int, worker: str, model=Run):
        self.sessions, self.row_id, self.worker, self.model = sessions, row_id, worker, model
        self.lock = threading.Lock()
        self.progress: dict = {"phase": "starting"}
        self.stop = threading.Event()           # set: cancelled or taken over
        self.ours = True
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True,
                                       name=f"heartbeat-{model.__tablename__}-{row_id}")

    def check(self) -> None:
        if SHUTDOWN.is_set():
            raise HandBack()
        if self.stop.is_set():
            raise Stopped()

    def update(self, **progress) -> None:
        self.check()
        with self.lock:
            self.progress = {**self.progress, **progress}

    def start(self) -> None:
        self.thread.start()

    def _beat(self) -> None:
        while not self.done.wait(HEARTBEAT_S):
            try:
                self.flush()
            except Exception:                   # a database hiccup must not kill the work
                log.exception("heartbeat of %s %s failed", self.model.__tablename__, self.row_id)

    def write_extra(self, session: Session) -> None:
        """Subclasses write what they collected (training-curve rows) in the heartbeat's session."""

    def flush(self) -> None:
        with self.lock:
            progress = dict(self.progress)
        with self.sessions() as session:
            self.write_extra(session)
            step = progress.get("step")
            if not state.heartbeat(session, self.row_id, self.worker, step=step, progress=progress,
                                   model=self.model):
                self.ours = _still_ours(session, self.row_id, self.worker, self.model)
                self.stop.set()

    def close(self) -> None:
        self.done.set()
        if self.thread.is_alive():
            self.thread.join()


class Reporter(Heartbeat):
    """The science core's run events → progress, and training-curve rows for `metrics` (the names and
    steps cotdistill.curves.curve_values chooses: total, label and rationale loss, lr, tokens/s, tokens
    seen, epoch, and val_accuracy on validation steps)."""

    def __init__(self, sessions: sessionmaker, run_id: int, worker: str, log_every: int = 10, attempt: int = 0):
        super().__init__(sessions, run_id, worker, Run)
        self.log_every = max(1, log_every)
        self.attempt = attempt
        self.metrics: list[dict] = []
        self.events: list[dict] = []            # the run's history, written with the next heartbeat
        self.resumed_step: int | None = None
        self.last_val: dict = {}

    def __call__(self, event: dict) -> None:
        self.check()
        with self.lock:
            phase = event["phase"]
            if phase == "checkpoint":           # a corrupt checkpoint moved aside, or the resume point
                self.events.append({"kind": f"checkpoint_{event['kind']}", "message": event["message"],
                                    "at": utcnow()})
            elif phase == "start":
                self.resumed_step = event["resumed_step"]
                self.progress = {"phase": "train", "step": event["resumed_step"], "total": event["total"]}
            elif phase == "train":
                self.progress = {"phase": "train", **{k: _finite(event.get(k)) for k in
                                 ("step", "total", "loss", "label_loss", "lr", "tokens_per_s", "eta_s",
                                  "elapsed_s")}}
                if event.get("val_accuracy") is not None:
                    self.last_val = {"val_accuracy": event["val_accuracy"], "val_step": event["step"]}
                self.progress.update(self.last_val)
                self.metrics += [{"step": event["step"], "name": k, "value": v}
                                 for k, v in curve_values(event, self.log_every).items()]
            elif phase == "eval":
                self.progress = {**self.progress, "phase": "eval", "eval_done": event["done"],
                                 "eval_total": event["total"]}

    def write_extra(self, session: Session) -> None:
        self.write_events(session)
        with self.lock:
            rows, self.metrics = self.metrics, []
            resumed, self.resumed_step = self.resumed_step, None
        if resumed is not None or rows:
            state.add_metrics(session, self.row_id, rows, after_step=resumed)

    def write_events(self, session: Session) -> None:
        with self.lock:
            events, self.events = self.events, []
        state.add_events(session, self.row_id, events, attempt=self.attempt)

    def close(self) -> None:
        """Stop the heartbeat, then write what is left of the history (a run that fails right after
        moving a checkpoint aside still says so)."""
        super().close()
        if self.events:
            try:
                with self.sessions() as session:
                    self.write_events(session)
            except Exception:
                log.exception("writing the history of run %s failed", self.row_id)


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _still_ours(session: Session, row_id: int, worker: str, model=Run) -> bool:
    row = session.get(model, row_id)
    session.refresh(row)
    return row.status == "running" and row.worker == worker


def supervise(sessions: sessionmaker, row_id: int, worker: str, beat: Heartbeat, work: Callable[[], T]
              ) -> tuple[T | None, str | None]:
    """Do `work()` under the heartbeat and turn how it ended into the row's state: (result, None) on
    success, else (None, what happened): cancelled, taken over, handed back on shutdown, or failed
    with the message and traceback stored."""
    model = beat.model
    beat.start()
    try:
        return work(), None
    except Stopped:
        beat.close()
        with sessions() as session:
            if beat.ours:                        # cancelled: the checkpoint stays for a retry
                state.finish(session, row_id, worker, "cancelled", error="cancelled by request", model=model)
                return None, "cancelled"
        return None, "stopped: another worker holds it"
    except RanksLost as e:                       # a rank was killed: recovered like a lost worker
        beat.close()
        with sessions() as session:
            state.recover_own(session, row_id, worker, f"{e}", model=model)
        return None, f"recovered: {str(e).splitlines()[0]}"
    except HandBack:
        beat.close()
        with sessions() as session:
            state.requeue_own(session, row_id, worker, model=model)
        return None, "handed back: the worker is shutting down"
    except (KeyboardInterrupt, SystemExit):
        beat.close()                             # interrupted outright: hand it back too
        with sessions() as session:
            state.requeue_own(session, row_id, worker, model=model)
        raise
    except ArtifactsMissing as e:                # not a bug: the sentence names the path, no traceback
        beat.close()
        with sessions() as session:
            state.finish(session, row_id, worker, "failed", error=str(e), model=model)
        return None, f"failed: {e}"
    except Exception as e:
        beat.close()
        message = f"{type(e).__name__}: {e}\n\n{traceback.format_exc()}"
        with sessions() as session:
            state.finish(session, row_id, worker, "failed", error=message, model=model)
        return None, f"failed: {type(e).__name__}: {e}"
    finally:
        beat.close()


def finished_summary(out: Path, cfg: RunConfig) -> dict | None:
    """The summary of an earlier attempt that finished its folder but died before recording it."""
    path = out / "summary.json"
    if not (path.exists() and (out / "predictions.jsonl").exists()):
        return None
    summary = json.loads(path.read_text(encoding="utf-8"))
    if summary.get("config_hash") != cfg.hash(summary.get("device")):
        return None
    return summary if missing_artifact(out, summary, finished=True) is None else None   # else: run again


def execute(sessions: sessionmaker, run_id: int, worker: str) -> str:
    """Run `run_id` if this worker can claim it; returns what happened (for the log). A worker pinned
    to a GPU (worker/launch.py) holds that GPU, and any it borrows, while the run lasts."""
    locks = GpuLocks()
    locks.take_own()
    try:
        return _execute(sessions, run_id, worker, locks)
    finally:
        locks.release()


def _execute(sessions: sessionmaker, run_id: int, worker: str, locks: GpuLocks) -> str:
    with sessions() as session:
        if not state.claim(session, run_id, worker):
            return "not claimed (taken, finished or cancelled)"
        run = session.get(Run, run_id)
        config = dict(run.config)
        out = run_dir(run_id)
        run.artifact_uri = str(out)
        attempt = run.attempt
        session.commit()
    reporter = Reporter(sessions, run_id, worker, attempt=attempt)

    def work() -> tuple[dict, list[dict]]:
        check_config_paths(config)               # again here: a row written by hand is refused too
        cfg = from_dict(RunConfig, config)
        reporter.log_every = max(1, cfg.train.log_every)
        summary = finished_summary(out, cfg)
        if summary is None and cfg.train.devices > 1 and cfg.train.steps > 0:   # steps 0: nothing to spread
            summary = run_multi(cfg, out, reporter, locks, CHECKPOINT_EVERY)
        elif summary is None:
            from cotdistill.runner import run as run_science
            summary = run_science(cfg, out, callback=reporter, checkpoint_every=CHECKPOINT_EVERY)
        # The folder is the run's result: one that vanished (in part) fails the run, naming the path.
        check_artifacts(out, summary, finished=True)
        predictions = [json.loads(line) for line in
                       (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
        return summary, predictions

    result, outcome = supervise(sessions, run_id, worker, reporter, work)
    if outcome is not None:
        return outcome
    summary, predictions = result
    with sessions() as session:
        state.add_metrics(session, run_id, reporter.metrics, after_step=reporter.resumed_step)
        ok = state.complete(session, run_id, worker, summary, predictions)
    return "succeeded" if ok else "finished, but the run was no longer ours"
