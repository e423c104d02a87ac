"""Thin Celery tasks: they take ids and hand off to plain code at once (worker/execution.py,
worker/reconcile.py). A task that finds its run already claimed, finished or cancelled returns.
A database that cannot be reached is one line in the log per outage (worker/outage.py), not a
traceback per task or per round: the tasks wait for it to come back before claiming anything, and the
reconciler and presence loops back off.
"""

from __future__ import annotations

import functools
import os
import socket
import threading

from celery.signals import worker_ready, worker_shutting_down

from worker.celery_app import app


@functools.cache
def sessions():
    from worker.db import make_engine, session_factory
    return session_factory(make_engine())


def worker_name() -> str:
    return f"{os.environ.get('COTDISTILL_WORKER_NAME') or socket.gethostname()}:{os.getpid()}"


def _unless_database_lost(execute, row_id: int) -> str:
    """execute(sessions, row_id, worker) once the database answers; an unreachable database is one
    line (the row stays as it is: the reconciler sends it again once the database is back)."""
    from worker.execution import SHUTDOWN
    from worker.outage import OUTAGE, describe, is_outage, wait_until_back
    if OUTAGE.down and not wait_until_back(sessions(), SHUTDOWN):
        return "not claimed: the worker is shutting down"
    try:
        return execute(sessions(), row_id, worker_name())
    except Exception as e:
        if not is_outage(e):
            raise
        OUTAGE.failed(e)
        return f"stopped: database unreachable ({describe(e)}); the reconciler takes it up again once it is back"


@app.task(name="cotdistill.run", acks_late=True, reject_on_worker_lost=True)
def run(run_id: int) -> str:
    """Train and evaluate run `run_id` (queue `gpu`)."""
    from worker.execution import execute
    return _unless_database_lost(execute, int(run_id))


@app.task(name="cotdistill.job", acks_late=True, reject_on_worker_lost=True)
def job(job_id: int) -> str:
    """A generation or attribution job (queue `gpu`): see worker/jobs.py."""
    from worker.jobs import execute as execute_job
    return _unless_database_lost(execute_job, int(job_id))


@app.task(name="cotdistill.noop", acks_late=True)
def noop(run_id: int) -> str:
    """Claim and immediately succeed a run: measures the queue itself (bench/queue_latency.py)."""
    from worker import state
    with sessions()() as session:
        me = worker_name()
        if state.claim(session, int(run_id), me):
            state.complete(session, int(run_id), me, {"noop": True}, [])
            return "succeeded"
    return "not claimed"


@app.task(name="cotdistill.preview", ignore_result=False, acks_late=False)
def preview(config: dict, conditions: list[dict], n: int = 1, split: str = "train") -> list[dict]:
    """The exact training sequences of n examples under each condition (queue `cpu`): needs the
    student's tokenizer, so it runs here and not in the app."""
    import dataclasses
    from cotdistill.config import PerturbationConfig, RunConfig, from_dict
    from cotdistill.preview import preview_rows
    from worker.guard import check_config_paths
    check_config_paths(config)
    for cond in conditions:
        check_config_paths({"perturbation": cond.get("perturbation") or {}})
    cfg = from_dict(RunConfig, config)
    rows = []
    for cond in conditions:
        pert = from_dict(PerturbationConfig, cond.get("perturbation") or {"kind": "none"})
        variant = dataclasses.replace(cfg, placement=cond.get("placement", cfg.placement), perturbation=pert)
        for row in preview_rows(variant, n=n, split=split):
            rows.append({**row, "perturbation_params": pert.params, "label": cond.get("label")})
    return rows


@app.task(name="cotdistill.model_shapes", ignore_result=False, acks_late=False)
def model_shapes(students: list[dict]) -> list[dict]:
    """Parameter counts and sizes of students from their configs (queue `cpu`), for the app's memory
    estimate: reading them loads transformers, so it runs here and not in the app."""
    from worker.api.estimate import shapes_of
    return shapes_of(students)


@app.task(name="cotdistill.calibrate", ignore_result=False, acks_late=False)
def calibrate(config: dict) -> dict:
    """This machine's speed for a run of `config` before any has finished (queue `cpu`): a few training
    steps and test questions timed (cotdistill/throughput.py), cached under $COTDISTILL_HOME."""
    from worker.api.estimate import calibrate_here
    return calibrate_here(config)


@app.task(name="cotdistill.reconcile")
def reconcile() -> dict:
    """Re-send queued runs that have no live message; recover runs whose worker died (queue `cpu`)."""
    from worker.reconcile import reconcile as do_reconcile
    return do_reconcile(sessions())


def _reconcile_forever() -> None:
    import logging
    import time
    from worker.outage import OUTAGE, backoff, is_outage
    from worker.reconcile import RECONCILE_S, reconcile as do_reconcile
    log = logging.getLogger("worker.reconcile")
    tries = 0
    while True:
        try:
            do_reconcile(sessions())
            OUTAGE.ok()
            tries = 0
        except Exception as e:                  # database down: one line per outage, and back off
            if is_outage(e):
                OUTAGE.failed(e)
                tries += 1
            else:
                log.exception("reconciler round failed")
        time.sleep(backoff(RECONCILE_S, tries))


@worker_ready.connect
def start_reconciler(**_) -> None:
    """Every worker reconciles on start and then periodically; concurrent reconcilers are harmless
    because every state change is a conditional update and a duplicate message finds its run claimed."""
    threading.Thread(target=_reconcile_forever, name="reconciler", daemon=True).start()


_LEAVING = threading.Event()


def _announce_forever(queues: list[str], concurrency: int) -> None:
    """Keep this worker's presence row fresh (worker/presence.py) until it shuts down."""
    import logging
    from worker import presence
    from worker.outage import OUTAGE, backoff, is_outage
    log = logging.getLogger("worker.presence")
    tries = 0
    while not _LEAVING.is_set():
        try:
            with sessions()() as session:
                presence.announce(session, worker_name(), queues, concurrency=concurrency)
            OUTAGE.ok()
            tries = 0
        except Exception as e:                  # database down: one line per outage, and back off
            if is_outage(e):
                OUTAGE.failed(e)
                tries += 1
            else:
                log.exception("could not record this worker's presence")
        _LEAVING.wait(backoff(presence.PRESENCE_S, tries))


@worker_ready.connect
def start_presence(sender=None, **_) -> None:
    """Announce the queues this worker consumes, so that the app can say why a run waits."""
    queues = sorted(sender.app.amqp.queues.consume_from) if sender is not None else []
    concurrency = getattr(getattr(sender, "controller", None), "concurrency", None) or 1
    threading.Thread(target=_announce_forever, args=(queues, int(concurrency)), name="presence",
                     daemon=True).start()


@worker_shutting_down.connect
def hand_back_running_run(**_) -> None:
    """Warm shutdown (SIGTERM, Ctrl-C): the running run stops at its next step and goes back to the
    queue with its checkpoint, instead of holding the shutdown until it ends; the worker's presence
    row goes (a worker killed outright leaves it to go stale)."""
    from worker.execution import SHUTDOWN
    SHUTDOWN.set()
    _LEAVING.set()
    try:
        from worker import presence
        with sessions()() as session:
            presence.leave(session, worker_name())
    except Exception:                           # database down: the row goes stale instead
        pass
