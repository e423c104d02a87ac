"""Which workers are alive and what they consume, and why a queued run is still waiting.

    announce(session, "host:123", ["gpu"], concurrency=1)   # a worker, at start and every PRESENCE_S
    leave(session, "host:123")                              # at a clean shutdown
    live = workers(session)                                 # [{name, queues, concurrency, alive, ...}]
    wait_reason(position=2, running=1, capacity=1)          # 'behind 3 runs'

Every worker process keeps one row of `workers` (worker/models.py: WorkerPresence) fresh from a thread
(worker/tasks.py). A worker killed with -9 cannot remove its row: a row whose heartbeat is older than
STALE_AFTER counts as gone. The database, not the broker, is asked, because the embedded broker has no
remote control and a cluster's workers may sit on other machines.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from worker.models import Job, Run, WorkerPresence, utcnow

PRESENCE_S = float(os.environ.get("COTDISTILL_PRESENCE_EVERY", 5))
STALE_AFTER = timedelta(seconds=float(os.environ.get("COTDISTILL_PRESENCE_STALE", 30)))
RUN_QUEUE = "gpu"                       # where runs and jobs go (worker/reconcile.py: send)


def announce(session: Session, name: str, queues: list[str], *, concurrency: int = 1) -> None:
    """Say that worker `name` is alive and consumes `queues` (insert its row, or refresh it)."""
    row = session.get(WorkerPresence, name)
    if row is None:
        session.add(WorkerPresence(name=name, queues=sorted(queues), concurrency=concurrency))
    else:
        row.queues, row.concurrency, row.heartbeat_at = sorted(queues), concurrency, utcnow()
    session.commit()


def leave(session: Session, name: str) -> None:
    session.execute(delete(WorkerPresence).where(WorkerPresence.name == name))
    session.commit()


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time here is UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def workers(session: Session, *, now: datetime | None = None) -> list[dict]:
    """Every worker row, alive or not (alive: a heartbeat within STALE_AFTER), newest heartbeat first."""
    now = now or utcnow()
    rows = session.scalars(select(WorkerPresence).order_by(WorkerPresence.heartbeat_at.desc())).all()
    return [{"name": w.name, "queues": list(w.queues or []), "concurrency": w.concurrency,
             "started_at": aware(w.started_at).isoformat(), "heartbeat_at": aware(w.heartbeat_at).isoformat(),
             "seen_s": (now - aware(w.heartbeat_at)).total_seconds(),
             "alive": now - aware(w.heartbeat_at) <= STALE_AFTER} for w in rows]


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def wait_reason(position: int, *, running: int, capacity: int, queue: str = RUN_QUEUE,
                jobs_ahead: int = 0, last_seen_s: float | None = None) -> str:
    """Why a queued run has not started. `position`: queued runs ahead of it in its queue; `running`:
    runs running now (they hold the workers); `jobs_ahead`: generation or attribution jobs among
    those (they share the queue); `capacity`: runs the live workers of `queue` take at once;
    `last_seen_s`: seconds since a worker of the queue was last alive, if one ever was."""
    if capacity <= 0:
        reason = f"no worker for queue {queue}"
        if last_seen_s is not None:
            reason += f" (the last one was seen {_ago(last_seen_s)} ago)"
        return reason
    ahead = position + running
    if ahead < capacity:
        return "starting: a worker is free"
    runs = ahead - jobs_ahead
    parts = [plural(runs, "run")] if runs else []
    parts += [plural(jobs_ahead, "job")] if jobs_ahead else []
    return "behind " + " and ".join(parts)


def _ago(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def queue_reasons(session: Session, *, kind: str = "run", now: datetime | None = None) -> dict[int, str]:
    """Run id (or job id, with kind="job") → wait_reason, for every queued run (job). Runs and jobs
    share the gpu queue and are taken in the order they were sent (enqueued_at, else created_at)."""
    now = now or utcnow()
    present = [w for w in workers(session, now=now) if RUN_QUEUE in w["queues"]]
    capacity = sum(w["concurrency"] for w in present if w["alive"])
    last_seen = min((w["seen_s"] for w in present), default=None)
    running = {"run": 0, "job": 0}
    queued = []
    for name, model in (("run", Run), ("job", Job)):
        running[name] = len(session.scalars(select(model.id).where(model.status == "running")).all())
        for row_id, enqueued, created in session.execute(
                select(model.id, model.enqueued_at, model.created_at).where(model.status == "queued")).all():
            queued.append((aware(enqueued or created) or now, name == "job", row_id, name))
    queued.sort()
    reasons, jobs_before = {}, running["job"]
    for position, (_, _, row_id, name) in enumerate(queued):
        if name == kind:
            reasons[row_id] = wait_reason(position, running=running["run"] + running["job"], capacity=capacity,
                                          jobs_ahead=jobs_before, last_seen_s=last_seen)
        if name == "job":
            jobs_before += 1
    return reasons
