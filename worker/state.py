"""Run (and job) state transitions as conditional updates, committed at once. The database is the truth:
a task that finds its run already claimed simply returns.

    if claim(session, run_id, worker="gpu-0"):      # queued, or running with a stale heartbeat
        ... train, calling heartbeat(session, run_id, step=…, progress={…}) every couple of seconds
        finish(session, run_id, "succeeded", summary=…)

    queued → running → succeeded | failed | cancelled

Every transition takes `model=Run` or `model=Job` (worker/models.py): both tables share these columns.
"""

from __future__ import annotations

from datetime import timedelta

import os

from sqlalchemy import and_, case, delete, insert, or_, update
from sqlalchemy.orm import Session

from worker.models import Metric, Prediction, Run, RunEvent, utcnow

# A running run whose heartbeat is older than this is presumed lost (its worker died).
STALE_AFTER = timedelta(seconds=float(os.environ.get("COTDISTILL_STALE_AFTER", 60)))
FINAL = ("succeeded", "failed", "cancelled")
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


def heartbeat(session: Session, run_id: int, worker: str, *, step: int | None = None,
              progress: dict | None = None, model=Run) -> bool:
    """Record progress; False when the run is no longer this worker's (taken over or cancelled),
    which tells the caller to stop."""
    values = {"heartbeat_at": utcnow()}
    if step is not None:
        values["step"] = step
    if progress is not None:
        values["progress"] = progress
    result = session.execute(
        update(model).where(model.id == run_id, model.status == "running", model.worker == worker,
                          model.cancel_requested.is_(False))
        .values(**values).execution_options(synchronize_session=False))
    session.commit()
    return result.rowcount == 1


def finish(session: Session, run_id: int, worker: str, status: str, *, summary: dict | None = None,
           error: str | None = None, model=Run) -> bool:
    """End a run this worker holds; False if it was not (any longer) this worker's."""
    if status not in FINAL:
        raise ValueError(f"finish: status must be one of {FINAL}, not {status!r}")
    values = {"status": status, "finished_at": utcnow(), "error": error, "summary": summary}
    if summary is not None and hasattr(model, "accuracy"):
        values["accuracy"] = summary.get("accuracy")
    result = session.execute(
        update(model).where(model.id == run_id, model.status == "running", model.worker == worker)
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


def complete(session: Session, run_id: int, worker: str, summary: dict, predictions: list[dict]) -> bool:
    """Succeed the run and store its predictions in one transaction: exactly one summary and one
    prediction per test example, even when an earlier attempt died half-way."""
    values = {"status": "succeeded", "finished_at": utcnow(), "error": None, "summary": summary,
              "accuracy": summary.get("accuracy"),
              "progress": {"phase": "done", "step": summary.get("train_steps"),
                           "tokens_per_s": summary.get("tokens_per_s")}}
    if summary.get("train_steps") is not None:
        values["step"] = summary["train_steps"]
    result = session.execute(
        update(Run).where(Run.id == run_id, Run.status == "running", Run.worker == worker).values(**values)
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


def mark_sent(session: Session, run_id: int, task_id: str, *, model=Run) -> None:
    session.execute(update(model).where(model.id == run_id)
                    .values(task_id=task_id, enqueued_at=utcnow()).execution_options(synchronize_session=False))
    session.commit()


def requeue_own(session: Session, run_id: int, worker: str, *, model=Run) -> bool:
    """A worker shutting down hands its run back (same attempt); the reconciler sends it again."""
    result = session.execute(update(model).where(model.id == run_id, model.status == "running", model.worker == worker)
                             .values(status="queued", worker=None, task_id=None)
                             .execution_options(synchronize_session=False))
    session.commit()
    return result.rowcount == 1


def recover_own(session: Session, run_id: int, worker: str, reason: str, *, model=Run) -> bool:
    """A worker whose run lost a process (a killed rank) gives it back as the reconciler recovers a
    lost worker's run: attempt + 1, resumed from its checkpoint; failed once MAX_ATTEMPTS is reached."""
    from worker.reconcile import MAX_ATTEMPTS
    mine = and_(model.id == run_id, model.status == "running", model.worker == worker)
    row = session.get(model, run_id)
    session.refresh(row)
    if row.attempt + 1 >= MAX_ATTEMPTS:
        values = {"status": "failed", "finished_at": utcnow(),
                  "error": f"{reason}\ngave up after {row.attempt + 1} attempts (COTDISTILL_MAX_ATTEMPTS={MAX_ATTEMPTS})"}
    else:
        values = {"status": "queued", "attempt": model.attempt + 1, "worker": None, "task_id": None,
                  "cancel_requested": False}
    result = session.execute(update(model).where(mine).values(**values)
                             .execution_options(synchronize_session=False))
    session.commit()
    return result.rowcount == 1
