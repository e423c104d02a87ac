"""Jobs other than runs, on the same state machine: claim, heartbeat, cancel, recover, resume.

    job_id = create(session, "attribution", {...})      # then reconcile.send(session, [job_id], model=Job)
    execute(sessions, job_id, worker)                    # what the Celery task `cotdistill.job` calls

A kind is one function `handler(ctx: JobContext) -> summary dict`, registered in KINDS. It reports
progress with ctx.beat.update(step=done, total=n, ...) (which also raises when the job was cancelled
or the worker shuts down), stores its results as it goes so that a recovered job skips what is done,
and writes files under ctx.out ($COTDISTILL_ARTIFACTS/job-<id>/).
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from worker import state
from worker.execution import Heartbeat, artifacts_root, supervise
from worker.guard import check_job
from worker.models import Job

KINDS = {
    "attribution": "worker.attribution_job:run",
    "generation": "worker.generation_job:run",
}


@dataclass
class JobContext:
    sessions: sessionmaker
    job_id: int
    params: dict
    beat: Heartbeat
    out: Path
    attempt: int


def create(session: Session, kind: str, params: dict, *, name: str | None = None,
           total: int | None = None) -> int:
    if kind not in KINDS:
        raise ValueError(f"unknown job kind {kind!r}; known: {', '.join(KINDS)}")
    job = Job(kind=kind, name=name, params=params, status="queued", total_steps=total)
    session.add(job)
    session.commit()
    return job.id


def handler(kind: str):
    module, func = KINDS[kind].split(":")
    return getattr(importlib.import_module(module), func)


def execute(sessions: sessionmaker, job_id: int, worker: str) -> str:
    claimed_at = time.monotonic()
    with sessions() as session:
        if not state.claim(session, job_id, worker, model=Job):
            return "not claimed (taken, finished or cancelled)"
        job = session.get(Job, job_id)
        kind, params, attempt = job.kind, dict(job.params), job.attempt
        out = artifacts_root() / f"job-{job_id}"
        job.artifact_uri = str(out)
        session.commit()
    out.mkdir(parents=True, exist_ok=True)
    beat = Heartbeat(sessions, job_id, worker, Job, attempt=attempt, claimed_at=claimed_at)
    ctx = JobContext(sessions, job_id, params, beat, out, attempt)

    def work():
        check_job(kind, params)                  # again here: a row written by hand is refused too
        return handler(kind)(ctx)

    summary, outcome = supervise(sessions, job_id, worker, beat, work)
    if outcome is not None:
        return outcome
    with sessions() as session:
        ok = state.finish(session, job_id, worker, "succeeded", summary=summary, model=Job, attempt=attempt)
    return "succeeded" if ok else "finished, but the job was no longer ours"
