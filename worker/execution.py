"""Execute one run: claim it, call the science core, turn its callback into rows, end it.

    execute(run_id, worker="host:pid")      # what the Celery task `cotdistill.run` calls

The training loop never waits on the database: the callback only records the latest progress in
memory, and a heartbeat thread writes it (with the training-curve rows) every couple of seconds,
through every phase (loading, training, validation, evaluation, saving). The same thread notices a
cancel request, or that another worker took the run over, and raises the stop flag that the callback
checks at every step, evaluation batch and decoding step. A cancelled run keeps its heartbeat until it
has stopped, so the reconciler never mistakes it for a lost one.

One writer per run: the core calls `before_write` (Heartbeat.check) before every write into the run
folder. It passes only while this attempt's hold on the run was confirmed by the database less than
LEASE_S ago (half the stale limit, so no other worker can have taken the run over meanwhile); past
that it asks the database at once, and stops the run if the run is no longer this attempt's. A worker
paused past the stale limit (SIGSTOP, a frozen VM) and resumed after another worker finished its run
therefore stops without touching the finished folder. A database that stops answering for LEASE_S
stops the run the same way (DatabaseLost, one log line: worker/outage.py); once the database is back,
the reconciler re-queues the run, which resumes from its checkpoint. Checkpoints go to
$COTDISTILL_ARTIFACTS/run-<id>/ (default: $COTDISTILL_HOME/artifacts), so a retried (failed) or
recovered run resumes from its last good checkpoint; a run that succeeds or is cancelled leaves none
(unless $COTDISTILL_KEEP_CHECKPOINTS); a corrupt one the core moved aside, and the step it resumed
from, go to the run's history (table run_events, `cotdistill show RUN`). A run succeeds only when its
folder is complete (cotdistill.run.missing_artifact); otherwise it fails naming the missing path.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
import traceback
from pathlib import Path
from typing import Callable, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from cotdistill.config import RunConfig, from_dict
from cotdistill.run import PHASES, check_artifacts, missing_artifact
from cotdistill.errors import ArtifactsMissing, WriteFailed
from cotdistill.train.curves import curve_values
from worker import state
from worker.artifacts import artifacts_root, drop_checkpoint, run_dir  # noqa: F401 (also imported from here)
from cotdistill.errors import RanksLost, Superseded
from worker.guard import check_config_paths
from worker.launch import GpuLocks, run_multi
from worker.models import Run, utcnow
from worker.outage import OUTAGE, describe, is_outage

log = logging.getLogger(__name__)
T = TypeVar("T")
HEARTBEAT_S = float(os.environ.get("COTDISTILL_HEARTBEAT", 2.0))
CHECKPOINT_EVERY = int(os.environ.get("COTDISTILL_CHECKPOINT_EVERY", 50))
LEASE_S = state.STALE_AFTER.total_seconds() / 2
"""How long a confirmation that this attempt holds its run is good for writing: half the stale limit
(a takeover needs a heartbeat older than the whole limit; the other half covers clock skew)."""


class Stopped(Exception):
    """Raised from the progress callback to stop a run (cancelled, or no longer ours)."""


class HandBack(Exception):
    """Raised from the progress callback when the worker shuts down: the run goes back to the queue."""


class DatabaseLost(Exception):
    """The database did not confirm this attempt's hold for LEASE_S: the run stops writing; the
    reconciler re-queues it once the database answers again."""


# Set by the worker's shutdown signal (worker/tasks.py): the running run is handed back at its next
# step, with its checkpoint, instead of being finished or failed.
SHUTDOWN = threading.Event()


class Heartbeat:
    """Holds the latest progress in memory; a thread writes it and a heartbeat every HEARTBEAT_S,
    and raises the stop flag when the row is cancelled or taken over, or the database stays away.
    `check()` is what the work calls between steps and before every write into its folder.
    `attempt` (the row's attempt when claimed) is the fencing token; `claimed_at` (time.monotonic()
    taken before the claim) is when the hold was last confirmed."""

    def __init__(self, sessions: sessionmaker, row_id: int, worker: str, model=Run, *,
                 attempt: int | None = None, claimed_at: float | None = None):
        self.sessions, self.row_id, self.worker, self.model = sessions, row_id, worker, model
        self.attempt = attempt
        self.lock = threading.Lock()
        self.flush_lock = threading.Lock()      # one database round trip at a time (thread or check)
        self.progress: dict = {"phase": "starting"}
        self.stop = threading.Event()           # set: cancelled, taken over or database lost
        self.lost: str | None = None            # why the database was given up on (DatabaseLost)
        self.ours = True
        self.confirmed_at = time.monotonic() if claimed_at is None else claimed_at
        self.phase_started: tuple[str, float] | None = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True,
                                       name=f"heartbeat-{model.__tablename__}-{row_id}")

    def check(self, path=None) -> None:
        """Return only while the work may go on (and write `path`, for the core's before_write):
        raises HandBack on shutdown, Stopped when cancelled or taken over, DatabaseLost when the
        database has not confirmed this attempt's hold for LEASE_S."""
        if SHUTDOWN.is_set():
            raise HandBack()
        if not self.stop.is_set() and time.monotonic() - self.confirmed_at >= LEASE_S:
            self.confirm()
        if self.stop.is_set():
            if self.lost is not None:
                raise DatabaseLost(self.lost)
            raise Stopped()

    def confirm(self) -> None:
        """The hold is older than LEASE_S (a paused process, an unanswering database): ask the
        database now, waiting at most a few heartbeats for a round trip already under way."""
        if self.flush_lock.acquire(timeout=2 * HEARTBEAT_S + 5):
            try:
                self._flush()
            except Exception:                    # a bug in a write, as in the heartbeat thread
                log.exception("heartbeat of %s %s failed", self.model.__tablename__, self.row_id)
            finally:
                self.flush_lock.release()
        if not self.stop.is_set() and time.monotonic() - self.confirmed_at >= LEASE_S:
            self._give_up("no answer")

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
            except Exception:                   # a bug in a write must not kill the work
                log.exception("heartbeat of %s %s failed", self.model.__tablename__, self.row_id)

    def write_extra(self, session: Session) -> None:
        """Subclasses write what they collected (training-curve rows) in the heartbeat's session,
        once the heartbeat confirmed that the row is still this attempt's."""

    def flush(self) -> None:
        with self.flush_lock:
            self._flush()

    def _flush(self) -> None:
        with self.lock:
            progress = dict(self.progress)
        sent = time.monotonic()
        try:
            with self.sessions() as session:
                if state.heartbeat(session, self.row_id, self.worker, step=progress.get("step"),
                                   progress=progress, model=self.model, attempt=self.attempt):
                    self.confirmed_at = sent
                    self.write_extra(session)
                else:                            # cancelled (still ours, heartbeat kept) or taken over
                    self.ours = state.holds(session, self.row_id, self.worker, model=self.model,
                                            attempt=self.attempt)
                    if self.ours:
                        self.confirmed_at = sent
                    self.stop.set()
            OUTAGE.ok()
        except Exception as e:
            if not is_outage(e):
                raise
            OUTAGE.failed(e)                     # one line for the whole outage, not one per beat
            if time.monotonic() - self.confirmed_at >= LEASE_S:
                self._give_up(describe(e))

    def _give_up(self, reason: str) -> None:
        if not self.stop.is_set():
            self.lost = (f"the database did not answer for {LEASE_S:g} s ({reason}); the run stopped "
                         f"writing, and the reconciler re-queues it from its last checkpoint once the "
                         f"database is back")
            self.stop.set()

    def close(self) -> None:
        self.done.set()
        if self.thread.is_alive():
            self.thread.join(timeout=2 * HEARTBEAT_S + 30)   # a hung database call must not hang the task


class Reporter(Heartbeat):
    """The science core's run events → progress, and training-curve rows for `metrics` (the names and
    steps cotdistill.train.curves.curve_values chooses: total, label and rationale loss, lr, tokens/s, tokens
    seen, epoch, and val_accuracy on validation steps)."""

    def __init__(self, sessions: sessionmaker, run_id: int, worker: str, log_every: int = 10, attempt: int = 0,
                 claimed_at: float | None = None, out: Path | None = None):
        super().__init__(sessions, run_id, worker, Run, attempt=attempt, claimed_at=claimed_at)
        self.out = out
        self.log_every = max(1, log_every)
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
                if self.resumed_step and self.out is not None:
                    # The curve up to the checkpoint is the folder's (an earlier attempt may have died
                    # before its heartbeat wrote the last rows): every row is replaced from it.
                    self.metrics = curve_rows(self.out / "metrics.jsonl") + self.metrics
                    self.resumed_step = 0
            elif phase == "train":
                self.progress = {"phase": "train", **{k: _finite(event.get(k)) for k in
                                 ("step", "total", "loss", "label_loss", "lr", "tokens_per_s", "eta_s",
                                  "elapsed_s")}}
                if event.get("val_accuracy") is not None:
                    self.last_val = {"val_accuracy": event["val_accuracy"], "val_step": event["step"]}
                self.progress.update(self.last_val)
                self.metrics += [{"step": event["step"], "name": k, "value": v}
                                 for k, v in curve_values(event, self.log_every).items()]
            elif phase in PHASES:               # load, validate, evaluate, save: done of total
                self.progress = {**self.progress, **self.phase_progress(phase, event["done"], event["total"])}

    def phase_progress(self, phase: str, done: int, total: int) -> dict:
        """{phase, phase_done, phase_total, phase_eta_s} (the ETA from the pace so far in this phase)."""
        now = time.monotonic()
        if self.phase_started is None or self.phase_started[0] != phase or done == 0:
            self.phase_started = (phase, now)
        elapsed = now - self.phase_started[1]
        eta = elapsed / done * (total - done) if done and total else None
        return {"phase": phase, "phase_done": done, "phase_total": total, "phase_eta_s": eta}

    def write_extra(self, session: Session) -> None:
        self.write_events(session)
        with self.lock:
            rows, self.metrics = self.metrics, []
            resumed, self.resumed_step = self.resumed_step, None
        if resumed is not None or rows:
            try:
                state.add_metrics(session, self.row_id, rows, after_step=resumed)
            except Exception:                    # kept for the next heartbeat (a database blip)
                with self.lock:
                    self.metrics = rows + self.metrics
                    if self.resumed_step is None:
                        self.resumed_step = resumed
                raise

    def write_events(self, session: Session) -> None:
        with self.lock:
            events, self.events = self.events, []
        try:
            state.add_events(session, self.row_id, events, attempt=self.attempt)
        except Exception:
            with self.lock:
                self.events = events + self.events
            raise

    def close(self) -> None:
        """Stop the heartbeat, then write what is left of the history (a run that fails right after
        moving a checkpoint aside still says so), unless the run is no longer this attempt's."""
        super().close()
        if self.events and self.ours and self.lost is None:
            try:
                with self.sessions() as session:
                    self.write_events(session)
            except Exception:
                log.exception("writing the history of run %s failed", self.row_id)


def curve_rows(path: Path) -> list[dict]:
    """The `metrics` rows of a run folder's metrics.jsonl (one line per logged step)."""
    if not path.is_file():
        return []
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [{"step": line["step"], "name": name, "value": value}
            for line in lines for name, value in line.items() if name != "step"]


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def supervise(sessions: sessionmaker, row_id: int, worker: str, beat: Heartbeat, work: Callable[[], T]
              ) -> tuple[T | None, str | None]:
    """Do `work()` under the heartbeat and turn how it ended into the row's state: (result, None) on
    success, else (None, what happened): cancelled, taken over, handed back on shutdown, or failed
    with the message and traceback stored."""
    model, attempt = beat.model, beat.attempt
    beat.start()
    try:
        return work(), None
    except Stopped:
        beat.close()
        if beat.ours:                            # cancelled (a run's checkpoint goes: drop_checkpoint)
            with sessions() as session:
                state.finish(session, row_id, worker, "cancelled", error=state.CANCELLED, model=model,
                             attempt=attempt)
            return None, "cancelled"
        return None, "stopped: another worker holds it"
    except DatabaseLost as e:                    # nothing can be recorded: the reconciler recovers it
        beat.close()
        return None, f"stopped: {e}"
    except Superseded:                           # a later attempt's launch owns the run folder
        beat.close()
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
    except Exception as e:
        beat.close()
        # ArtifactsMissing and WriteFailed are not bugs: their sentence names the path, no traceback
        plain = isinstance(e, (ArtifactsMissing, WriteFailed))
        said = str(e) if plain else f"{type(e).__name__}: {e}"
        with sessions() as session:
            ours = state.finish(session, row_id, worker, "failed", model=model, attempt=attempt,
                                error=said if plain else f"{said}\n\n{traceback.format_exc()}")
        if ours:
            return None, f"failed: {said}"
        # taken over before the error (paused past the stale limit while another worker finished the
        # run and removed the checkpoint this one was writing): the row is not this attempt's to fail
        return None, f"stopped: another worker holds it (this attempt then met {type(e).__name__}: {e})"
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
    claimed_at = time.monotonic()
    with sessions() as session:
        if not state.claim(session, run_id, worker):
            return "not claimed (taken, finished or cancelled)"
        run = session.get(Run, run_id)
        config = dict(run.config)
        out = run_dir(run_id)
        run.artifact_uri = str(out)
        attempt = run.attempt
        session.commit()
    reporter = Reporter(sessions, run_id, worker, attempt=attempt, claimed_at=claimed_at, out=out)

    def work() -> tuple[dict, list[dict]]:
        check_config_paths(config)               # again here: a row written by hand is refused too
        cfg = from_dict(RunConfig, config)
        reporter.log_every = max(1, cfg.train.log_every)
        summary = finished_summary(out, cfg)
        if summary is None and cfg.train.devices > 1 and cfg.train.steps > 0:   # steps 0: nothing to spread
            summary = run_multi(cfg, out, reporter, locks, CHECKPOINT_EVERY)
        elif summary is None:
            from cotdistill.run import run as run_science
            summary = run_science(cfg, out, callback=reporter, checkpoint_every=CHECKPOINT_EVERY,
                                  before_write=reporter.check)
        # The folder is the run's result: one that vanished (in part) fails the run, naming the path.
        check_artifacts(out, summary, finished=True)
        predictions = [json.loads(line) for line in
                       (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
        return summary, predictions

    result, outcome = supervise(sessions, run_id, worker, reporter, work)
    if outcome == "cancelled":
        drop_checkpoint(out)
    if outcome is not None:
        return outcome
    summary, predictions = result
    with sessions() as session:
        if not state.holds(session, run_id, worker, attempt=attempt):
            return "finished, but the run was no longer ours"
        state.add_metrics(session, run_id, reporter.metrics, after_step=reporter.resumed_step)
        ok = state.complete(session, run_id, worker, summary, predictions, attempt=attempt)
    return "succeeded" if ok else "finished, but the run was no longer ours"
