"""Run state transitions as conditional updates, committed at once. The database is the truth:
a task that finds its run already claimed simply returns.

    if claim(session, run_id, worker="gpu-0"):      # queued, or running with a stale heartbeat
        ... train, calling heartbeat(session, run_id, step=…, progress={…}) every couple of seconds
        finish(session, run_id, "succeeded", summary=…)

    queued → running → succeeded | failed | cancelled
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import and_, or_, update
from sqlalchemy.orm import Session

from worker.models import Run, utcnow

STALE_AFTER = timedelta(seconds=60)
FINAL = ("succeeded", "failed", "cancelled")


def claim(session: Session, run_id: int, worker: str, *, stale_after: timedelta = STALE_AFTER) -> bool:
    """Take the run if it is queued, or running with a heartbeat older than `stale_after`."""
    now = utcnow()
    claimable = or_(Run.status == "queued",
                    and_(Run.status == "running", or_(Run.heartbeat_at.is_(None),
                                                      Run.heartbeat_at < now - stale_after)))
    result = session.execute(
        update(Run).where(Run.id == run_id, claimable, Run.cancel_requested.is_(False))
        .values(status="running", worker=worker, heartbeat_at=now, started_at=now, error=None)
        .execution_options(synchronize_session=False))
    session.commit()
    return result.rowcount == 1


def heartbeat(session: Session, run_id: int, worker: str, *, step: int | None = None,
              progress: dict | None = None) -> bool:
    """Record progress; False when the run is no longer this worker's (taken over or cancelled),
    which tells the caller to stop."""
    values = {"heartbeat_at": utcnow()}
    if step is not None:
        values["step"] = step
    if progress is not None:
        values["progress"] = progress
    result = session.execute(
        update(Run).where(Run.id == run_id, Run.status == "running", Run.worker == worker,
                          Run.cancel_requested.is_(False))
        .values(**values).execution_options(synchronize_session=False))
    session.commit()
    return result.rowcount == 1


def finish(session: Session, run_id: int, worker: str, status: str, *, summary: dict | None = None,
           error: str | None = None) -> bool:
    """End a run this worker holds; False if it was not (any longer) this worker's."""
    if status not in FINAL:
        raise ValueError(f"finish: status must be one of {FINAL}, not {status!r}")
    values = {"status": status, "finished_at": utcnow(), "error": error, "summary": summary}
    if summary is not None:
        values["accuracy"] = summary.get("accuracy")
    result = session.execute(
        update(Run).where(Run.id == run_id, Run.status == "running", Run.worker == worker)
        .values(**values).execution_options(synchronize_session=False))
    session.commit()
    return result.rowcount == 1


def request_cancel(session: Session, run_id: int) -> str | None:
    """Cancel: a queued run ends at once; a running one is flagged and its worker stops at the next
    step. Returns the run's status afterwards (None if there is no such run)."""
    session.execute(update(Run).where(Run.id == run_id, Run.status == "queued")
                    .values(status="cancelled", finished_at=utcnow(), cancel_requested=True)
                    .execution_options(synchronize_session=False))
    session.execute(update(Run).where(Run.id == run_id, Run.status == "running")
                    .values(cancel_requested=True).execution_options(synchronize_session=False))
    session.commit()
    run = session.get(Run, run_id)
    if run is not None:
        session.refresh(run)
    return run.status if run is not None else None
