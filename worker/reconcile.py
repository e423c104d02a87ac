"""Sending runs to the broker, and the reconciler that finds what the broker lost.

    send(session, [run_id, ...])        # one message per run: "look at run X"
    reconcile(sessions)                 # on worker start and every RECONCILE_S seconds

The database is the truth. The reconciler
- re-sends queued runs that have no live message (not in the broker's queue, not held unacknowledged),
  once their last message is older than a grace period;
- re-queues running runs whose heartbeat went stale (their worker died) with attempt + 1, so that
  they resume from their last checkpoint, and fails them once MAX_ATTEMPTS is reached;
- ends `cancelled` a stale running run whose cancel was requested (a cancel is final: it is never
  queued again, and its checkpoint is deleted unless $COTDISTILL_KEEP_CHECKPOINTS).
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from datetime import timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from worker import state
from worker.celery_app import GPU_QUEUE, broker_dir, broker_url
from worker.models import Job, Run, utcnow

log = logging.getLogger(__name__)
MAX_ATTEMPTS = state.MAX_ATTEMPTS
RECONCILE_S = float(os.environ.get("COTDISTILL_RECONCILE_EVERY", 30))
GRACE = timedelta(seconds=float(os.environ.get("COTDISTILL_RESEND_GRACE", 10)))


TASKS = {Run: "cotdistill.run", Job: "cotdistill.job"}       # both on the gpu queue


def send(session: Session, ids: list[int], *, model=Run) -> list[int]:
    """Send one message per run (or job); returns the ids whose message reached the broker. One whose
    message could not be sent stays queued, and the reconciler sends it again later."""
    from worker.celery_app import get_app
    app = get_app()
    sent = []
    for row_id in ids:
        task_id = uuid.uuid4().hex
        if not state.mark_sent(session, row_id, task_id, model=model):
            continue                           # claimed meanwhile: its message was delivered
        try:
            app.send_task(TASKS[model], args=[row_id], queue=GPU_QUEUE, task_id=task_id,
                          retry=True, retry_policy={"max_retries": 2, "interval_start": 0.2})
            sent.append(row_id)
        except Exception as e:                 # broker down: the row stays queued, nothing is lost
            log.warning("could not send %s %s to the broker (%s); the reconciler will retry",
                        model.__tablename__, row_id, e)
    return sent


def live_task_ids(url: str | None = None) -> set[str] | None:
    """Ids of the messages waiting in the gpu queue or held unacknowledged; None if unknown."""
    url = url or broker_url()
    scheme = url.split(":", 1)[0]
    if scheme == "filesystem":
        ids = set()
        for path in (broker_dir() / "queue").glob(f"*.{GPU_QUEUE}.msg"):
            try:
                ids.add(json.loads(path.read_bytes())["headers"]["id"])
            except (OSError, ValueError, KeyError):
                continue                        # taken meanwhile, or being written
        return ids
    if scheme in ("redis", "rediss"):
        import redis
        client = redis.Redis.from_url(url)
        try:
            payloads = client.lrange(GPU_QUEUE, 0, -1)
            payloads += [json.dumps(json.loads(v)[0]) for v in client.hvals("unacked")]
        finally:
            client.close()
        return {json.loads(p)["headers"]["id"] for p in payloads}
    return None


def recover_stale(session: Session, model=Run) -> dict:
    """Running rows whose heartbeat went stale: re-queue (attempt + 1) or, past the limit, fail; one
    whose cancel was requested is cancelled."""
    cutoff = utcnow() - state.STALE_AFTER
    stale = or_(model.heartbeat_at.is_(None), model.heartbeat_at < cutoff)
    requeued, failed, cancelled = [], [], []
    for run in session.scalars(select(model).where(model.status == "running", stale)).all():
        if run.cancel_requested:
            done = session.execute(
                update(model).where(model.id == run.id, model.status == "running", stale)
                .values(status="cancelled", finished_at=utcnow(),
                        error=f"{state.CANCELLED} (its worker {run.worker} stopped answering before it stopped)")
                .execution_options(synchronize_session=False)).rowcount
            if done:
                cancelled.append(run.id)
        elif run.attempt + 1 >= MAX_ATTEMPTS:
            done = session.execute(
                update(model).where(model.id == run.id, model.status == "running", stale)
                .values(status="failed", finished_at=utcnow(),
                        error=f"worker lost: no heartbeat from {run.worker} since {run.heartbeat_at}; "
                              f"gave up after {run.attempt + 1} attempts (COTDISTILL_MAX_ATTEMPTS="
                              f"{MAX_ATTEMPTS})")
                .execution_options(synchronize_session=False)).rowcount
            if done:
                failed.append(run.id)
        else:
            done = session.execute(
                update(model).where(model.id == run.id, model.status == "running", stale,
                                    model.cancel_requested.is_(False))   # a cancel that came meanwhile
                .values(status="queued", attempt=model.attempt + 1, worker=None, task_id=None)
                .execution_options(synchronize_session=False)).rowcount
            if done:
                requeued.append(run.id)
    session.commit()
    if model is Run and cancelled:              # a cancel is final: its checkpoint goes (as the worker's)
        from worker.artifacts import drop_checkpoint, run_dir
        for run_id in cancelled:
            drop_checkpoint(run_dir(run_id))
    return {"requeued": requeued, "failed": failed, **({"cancelled": cancelled} if cancelled else {})}


def orphaned(session: Session, live: set[str] | None, model=Run) -> list[int]:
    """Queued rows with no live message whose last message (if any) is older than the grace period."""
    old = or_(model.enqueued_at.is_(None), model.enqueued_at < utcnow() - GRACE)
    rows = session.execute(select(model.id, model.task_id).where(model.status == "queued", old)
                           .order_by(model.id)).all()
    if live is None:                            # broker can't be inspected: trust only unsent rows
        return [run_id for run_id, task_id in rows if task_id is None]
    return [run_id for run_id, task_id in rows if task_id not in live]


def clean_processed(max_age_s: float = 3600) -> None:
    folder = broker_dir() / "processed"
    if broker_url().startswith("filesystem") and folder.is_dir():
        cutoff = time.time() - max_age_s
        for path in folder.iterdir():
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError:
                continue


def reconcile(sessions: sessionmaker) -> dict:
    with sessions() as session:
        result = recover_stale(session)
        jobs = recover_stale(session, Job)
        try:
            live = live_task_ids()
        except Exception as e:                  # broker down: try again next round
            log.warning("reconciler: broker not reachable (%s)", e)
            return {**result, "resent": []}
        result["resent"] = send(session, orphaned(session, live))
        jobs["resent"] = send(session, orphaned(session, live, Job), model=Job)
        if any(jobs.values()):
            result["jobs"] = jobs
    clean_processed()
    if any(result.values()):
        log.info("reconciler: %s", result)
    return result
