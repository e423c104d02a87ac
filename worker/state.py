"""Run (and job) state transitions as conditional updates, committed at once. The database is the truth:
a task that finds its run already claimed simply returns.

    if claim(session, run_id, worker="gpu-0"):      # queued, or running with a stale heartbeat
        ... train, calling heartbeat(session, run_id, step=…, progress={…}) every couple of seconds
        finish(session, run_id, "succeeded", summary=…)

    queued → running → succeeded | failed | cancelled

Every transition takes `model=Run` or `model=Job` (worker/models.py): both tables share these columns.

The attempt that holds a running row is (worker, attempt): a takeover of a stale row is attempt + 1,
so passing `attempt=` to heartbeat, finish and complete makes them a fencing token: a worker paused
past the stale limit and resumed after another took its run over matches no row, and learns that it
must stop (worker/execution.py checks this before every write into the run's folder).
A cancel is final: a cancelled run keeps its heartbeat while it stops, and a row whose cancel was
requested is never queued again by recovery (it ends `cancelled`).
"""

from __future__ import annotations

from datetime import timedelta

import os

from sqlalchemy import and_, case, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from worker.models import Metric, Prediction, Run, RunEvent, utcnow

# A running run whose heartbeat is older than this is presumed lost (its worker died).
STALE_AFTER = timedelta(seconds=float(os.environ.get("COTDISTILL_STALE_AFTER", 60)))
FINAL = ("succeeded", "failed", "cancelled")
CANCELLED = "cancelled by request"
"""The error of a run that ended because its cancel was requested."""
# Attempts a run gets before a lost worker fails it (worker/reconcile.py); a takeover past it is refused.
MAX_ATTEMPTS = int(os.environ.get("COTDISTILL_MAX_ATTEMPTS", 3))


def claim(session: Session, run_id: int, worker: str, *, stale_after: timedelta = STALE_AFTER, model=Run,
          max_attempts: int | None = None) -> bool:
    """Take the run if it is queued, or running with a heartbeat older than `stale_after`. Taking over
    a stale run is a new attempt (attempt + 1), as when the reconciler re-queues it, whichever of the
    two sees the dead worker first; one past MAX_ATTEMPTS is left for the reconciler to fail."""
    if max_attempts is None:
        max_attempts = MAX_ATTEMPTS
    now = utcnow()
    stale = and_(model.status == "running",
                 or_(model.heartbeat_at.is_(None), model.heartbeat_at < now - stale_after))
    claimable = or_(model.status == "queued", and_(stale, model.attempt + 1 < max_attempts))
    result = session.execute(
        update(model).where(model.id == run_id, claimable, model.cancel_requested.is_(False))
        .values(status="running", worker=worker, heartbeat_at=now, started_at=now, error=None,
                attempt=case((model.status == "running", model.attempt + 1), else_=model.attempt))
        .execution_options(synchronize_session=False))
    session.commit()
    return result.rowcount == 1


def _held(model, run_id: int, worker: str, attempt: int | None):
    """The row is running and held by this worker (and this attempt, when given)."""
    held = [model.id == run_id, model.status == "running", model.worker == worker]
    if attempt is not None:
        held.append(model.attempt == attempt)
    return and_(*held)


def heartbeat(session: Session, run_id: int, worker: str, *, step: int | None = None,
              progress: dict | None = None, model=Run, attempt: int | None = None) -> bool:
    """Record progress; False when the run is no longer this worker's (taken over) or its cancel was
    requested, which tells the caller to stop. A cancelled run that is still this worker's keeps its
    heartbeat while it stops, so that the reconciler never takes it for a lost one."""
    values = {"heartbeat_at": utcnow()}
    if step is not None:
        values["step"] = step
    if progress is not None:
        values["progress"] = progress
    held = _held(model, run_id, worker, attempt)
    result = session.execute(update(model).where(held, model.cancel_requested.is_(False))
                             .values(**values).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        session.execute(update(model).where(held).values(heartbeat_at=values["heartbeat_at"])
                        .execution_options(synchronize_session=False))
    session.commit()
    return result.rowcount == 1


def holds(session: Session, run_id: int, worker: str, *, model=Run, attempt: int | None = None) -> bool:
    """Whether this worker (and attempt) still holds the running row, cancelled or not."""
    return session.scalar(select(func.count()).select_from(model).where(_held(model, run_id, worker, attempt))) == 1


def finish(session: Session, run_id: int, worker: str, status: str, *, summary: dict | None = None,
           error: str | None = None, model=Run, attempt: int | None = None) -> bool:
    """End a run this worker (and attempt) holds; False if it was not (any longer) this worker's."""
    if status not in FINAL:
        raise ValueError(f"finish: status must be one of {FINAL}, not {status!r}")
    values = {"status": status, "finished_at": utcnow(), "error": error, "summary": summary}
    if summary is not None and hasattr(model, "accuracy"):
        values["accuracy"] = summary.get("accuracy")
    result = session.execute(update(model).where(_held(model, run_id, worker, attempt))
                             .values(**values).execution_options(synchronize_session=False))
    session.commit()
    return result.rowcount == 1


def request_cancel(session: Session, run_id: int, *, model=Run) -> str | None:
    """Cancel: a queued run ends at once; a running one is flagged and its worker stops at the next
    step. Returns the run's status afterwards (None if there is no such run)."""
    session.execute(update(model).where(model.id == run_id, model.status == "queued")
                    .values(status="cancelled", finished_at=utcnow(), cancel_requested=True)
                    .execution_options(synchronize_session=False))
    session.execute(update(model).where(model.id == run_id, model.status == "running")
                    .values(cancel_requested=True).execution_options(synchronize_session=False))
    session.commit()
    run = session.get(model, run_id)
    if run is not None:
        session.refresh(run)
    return run.status if run is not None else None


def complete(session: Session, run_id: int, worker: str, summary: dict, predictions: list[dict], *,
             attempt: int | None = None) -> bool:
    """Succeed the run and store its predictions in one transaction: exactly one summary and one
    prediction per test example, even when an earlier attempt died half-way."""
    values = {"status": "succeeded", "finished_at": utcnow(), "error": None, "summary": summary,
              "accuracy": summary.get("accuracy"),
              "progress": {"phase": "done", "step": summary.get("train_steps"),
                           "tokens_per_s": summary.get("tokens_per_s")}}
    if summary.get("train_steps") is not None:
        values["step"] = summary["train_steps"]
    result = session.execute(update(Run).where(_held(Run, run_id, worker, attempt)).values(**values)
                             .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        session.rollback()
        return False
    session.execute(delete(Prediction).where(Prediction.run_id == run_id))
    if predictions:
        session.execute(insert(Prediction), [prediction_row(run_id, p) for p in predictions])
    session.commit()
    return True


def prediction_row(run_id: int, record: dict) -> dict:
    return {"run_id": run_id, "example_id": str(record["example_id"]), "predicted": record.get("predicted"),
            "correct": bool(record["correct"]), "generated": record.get("generated"),
            "scores": {k: v for k, v in record.items()
                       if k not in ("example_id", "predicted", "correct", "generated")}}


def add_metrics(session: Session, run_id: int, rows: list[dict], *, after_step: int | None = None) -> None:
    """Append training-curve rows; `after_step` first drops rows past a resumed run's checkpoint."""
    if after_step is not None:
        session.execute(delete(Metric).where(Metric.run_id == run_id, Metric.step > after_step))
    if rows:
        session.execute(insert(Metric), [{"run_id": run_id, **r} for r in rows])
    session.commit()


def add_events(session: Session, run_id: int, events: list[dict], *, attempt: int = 0) -> None:
    """Append to a run's history: events {kind, message}, in order."""
    if events:
        session.execute(insert(RunEvent), [{"run_id": run_id, "attempt": attempt, "at": e.get("at") or utcnow(),
                                            "kind": e["kind"], "message": e["message"]} for e in events])
        session.commit()


def requeue(session: Session, run_id: int, *, from_status: tuple[str, ...], new_attempt: bool, model=Run) -> bool:
    """Put a run back to `queued` (retry, or recovery of a lost one), clearing its worker and error."""
    values = {"status": "queued", "worker": None, "error": None, "cancel_requested": False,
              "finished_at": None, "task_id": None}
    if new_attempt:
        values["attempt"] = model.attempt + 1
    result = session.execute(update(model).where(model.id == run_id, model.status.in_(from_status))
                             .values(**values).execution_options(synchronize_session=False))
    session.commit()
    return result.rowcount == 1


def mark_sent(session: Session, run_id: int, task_id: str, *, model=Run) -> bool:
    """Record the message about to be sent for a queued row; False (nothing recorded, nothing to send)
    when the row is no longer queued: a worker claimed it since the sender read it, and a later
    `enqueued_at` would put its queueing after its start."""
    result = session.execute(update(model).where(model.id == run_id, model.status == "queued")
                             .values(task_id=task_id, enqueued_at=utcnow()).execution_options(synchronize_session=False))
    session.commit()
    return result.rowcount == 1


def requeue_own(session: Session, run_id: int, worker: str, *, model=Run) -> bool:
    """A worker shutting down hands its run back (same attempt); the reconciler sends it again. One
    whose cancel was requested ends `cancelled` instead."""
    mine = and_(model.id == run_id, model.status == "running", model.worker == worker)
    result = session.execute(update(model).where(mine, model.cancel_requested.is_(True))
                             .values(status="cancelled", finished_at=utcnow(), error=CANCELLED)
                             .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        result = session.execute(update(model).where(mine).values(status="queued", worker=None, task_id=None)
                                 .execution_options(synchronize_session=False))
    session.commit()
    return result.rowcount == 1


def recover_own(session: Session, run_id: int, worker: str, reason: str, *, model=Run) -> bool:
    """A worker whose run lost a process (a killed rank) gives it back as the reconciler recovers a
    lost worker's run: attempt + 1, resumed from its checkpoint; failed once MAX_ATTEMPTS is reached."""
    mine = and_(model.id == run_id, model.status == "running", model.worker == worker)
    row = session.get(model, run_id)
    session.refresh(row)
    if row.cancel_requested:
        values = {"status": "cancelled", "finished_at": utcnow(), "error": CANCELLED}
    elif row.attempt + 1 >= MAX_ATTEMPTS:
        values = {"status": "failed", "finished_at": utcnow(),
                  "error": f"{reason}\ngave up after {row.attempt + 1} attempts (COTDISTILL_MAX_ATTEMPTS={MAX_ATTEMPTS})"}
    else:
        values = {"status": "queued", "attempt": model.attempt + 1, "worker": None, "task_id": None,
                  "cancel_requested": False}
    result = session.execute(update(model).where(mine).values(**values)
                             .execution_options(synchronize_session=False))
    session.commit()
    return result.rowcount == 1
