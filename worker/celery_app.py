"""The Celery application: which broker, which queues, and the settings that keep runs safe.

    celery -A worker.celery_app worker --queues gpu,cpu      # what `cotdistill worker` starts

Broker: $COTDISTILL_BROKER_URL (a cluster: `redis://host:6379/0`), else the embedded, server-less
default, a folder of message files under $COTDISTILL_HOME/broker (kombu's `filesystem://` transport).
The embedded choice was measured against kombu's SQLAlchemy transport (bench/queue_latency.py, README):
both are polling transports; the filesystem one polls a directory listing, costs no database
connection, and takes its polling interval as a transport option.

Queues: `gpu` for training runs (one worker per GPU, one run at a time), `cpu` for light work.
The database is the truth; a message only says "look at run X" (see worker/tasks.py, worker/reconcile.py).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from celery import Celery
from kombu import Exchange, Queue
from kombu.transport import TRANSPORT_ALIASES

from cotdistill.paths import home

# `filesystem://` means the project's atomic variant of kombu's transport (worker/fs_broker.py).
TRANSPORT_ALIASES["filesystem"] = "worker.fs_broker:Transport"

GPU_QUEUE, CPU_QUEUE = "gpu", "cpu"
# Longer than the longest run: a broker that redelivers unacknowledged messages after this would
# otherwise start a second copy of a long run (the claim would refuse it, but it is wasted work).
VISIBILITY_TIMEOUT_S = int(os.environ.get("COTDISTILL_VISIBILITY_TIMEOUT", 7 * 24 * 3600))
POLL_S = float(os.environ.get("COTDISTILL_BROKER_POLL", 0.05))


def broker_dir() -> Path:
    return home() / "broker"


def broker_url() -> str:
    return os.environ.get("COTDISTILL_BROKER_URL") or "filesystem://"


def is_embedded(url: str | None = None) -> bool:
    return (url or broker_url()).split(":", 1)[0] in ("filesystem", "sqla+sqlite", "sqlalchemy")


def transport_options(url: str) -> dict:
    scheme = url.split(":", 1)[0]
    if scheme == "filesystem":
        folder = broker_dir()
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        # Both directions in one folder: every process on this machine shares the queue. Processed
        # messages move within the same file system, so two workers can't both take one (rename is atomic).
        return {"data_folder_in": str(folder / "queue"), "data_folder_out": str(folder / "queue"),
                "processed_folder": str(folder / "processed"), "store_processed": True,
                "control_folder": str(folder / "control"), "polling_interval": POLL_S}
    if scheme.startswith("sqla"):
        # The SQLAlchemy transport hands its transport options to create_engine, so the polling
        # interval can only be lowered on the class (see bench/queue_latency.py).
        from kombu.transport.sqlalchemy import Transport
        Transport.polling_interval = POLL_S
        return {}
    return {"visibility_timeout": VISIBILITY_TIMEOUT_S}


def result_backend(url: str) -> str:
    """Only light tasks that answer the app (a preview) keep results: in Redis on a cluster, in a
    small SQLite file under $COTDISTILL_HOME otherwise. Runs keep theirs in the database."""
    if os.environ.get("COTDISTILL_RESULT_BACKEND"):
        return os.environ["COTDISTILL_RESULT_BACKEND"]
    if url.startswith(("redis://", "rediss://")):
        return url
    home().mkdir(parents=True, exist_ok=True)
    return f"db+sqlite:///{home() / 'results.db'}"


def make_app(url: str | None = None) -> Celery:
    url = url or broker_url()
    app = Celery("cotdistill", broker=url, backend=result_backend(url), include=["worker.tasks"])
    app.conf.update(
        broker_transport_options=transport_options(url),
        broker_connection_retry_on_startup=True,
        task_acks_late=True,                    # the tasks are idempotent: a run is claimed once
        task_reject_on_worker_lost=True,        # a killed worker's message goes back to the queue
        worker_prefetch_multiplier=1,           # a busy worker holds no second run hostage
        task_queues=[Queue(q, Exchange(q, type="direct"), routing_key=q) for q in (GPU_QUEUE, CPU_QUEUE)],
        task_default_queue=CPU_QUEUE, task_default_exchange=CPU_QUEUE, task_default_routing_key=CPU_QUEUE,
        task_routes={name: {"queue": GPU_QUEUE, "routing_key": GPU_QUEUE} for name in ("cotdistill.run", "cotdistill.job")},
        task_ignore_result=True,                # results live in the database
        result_expires=3600,
        task_serializer="json", accept_content=["json"],
        # Broadcast commands need a fanout-capable broker; the embedded one polls files instead.
        worker_enable_remote_control=not is_embedded(url),
    )
    return app


@functools.cache
def _app_for(url: str, home_dir: str) -> Celery:
    return make_app(url)


def get_app() -> Celery:
    """The app for the current environment (the broker URL and home can change between tests)."""
    return _app_for(broker_url(), str(home()))


app = make_app()                                # the worker process's app (`cotdistill worker`)
