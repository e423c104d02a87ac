"""What every part of the jobs API shares: its sessions, its error, its date format."""

from __future__ import annotations

import functools
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy.orm import Session


class NotFound(LookupError):
    """No such run, experiment, job, attribution or rationale set."""


def _sessions(url: str):
    """Sessions on `url`. A SQLite file that $COTDISTILL_DATABASE_URL names must exist already (only
    `db upgrade` and `up` create one: a mistyped path is not silently a new, empty database); the
    default file under $COTDISTILL_HOME is the embedded state and is made on first use."""
    import os
    from worker.db import require_database
    if os.environ.get("COTDISTILL_DATABASE_URL"):
        require_database(url)               # checked at every call, so a later `db upgrade` is seen
    return _migrated(url)


@functools.cache
def _migrated(url: str):
    from worker.db import make_engine, session_factory, upgrade
    upgrade(url)
    return session_factory(make_engine(url))


@contextmanager
def session() -> Session:
    """A session on $COTDISTILL_DATABASE_URL (migrated on first use), closed afterwards; a SQLite file
    named there that does not exist raises DatabaseUnavailable ("no database at …")."""
    from worker.db import database_url
    with _sessions(database_url())() as s:
        yield s


def sessions():
    """The session factory itself (for code that opens sessions as it goes, like register())."""
    from worker.db import database_url
    return _sessions(database_url())


def database_problem(error: BaseException) -> str | None:
    """The one line to show for a database that cannot be reached or written, or None when `error`
    is something else (worker/db.py: explain)."""
    from worker.db import database_url, explain
    return explain(error, database_url())


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def ask_cpu_worker(task: str, args: list, *, timeout: float, what: str):
    """Send `task` to the `cpu` queue and wait for its answer; TimeoutError naming `what` when no
    worker answers (the app itself loads no model library)."""
    from celery.exceptions import TimeoutError as CeleryTimeout
    from worker.celery_app import CPU_QUEUE, get_app
    result = get_app().send_task(task, args=args, queue=CPU_QUEUE)
    try:
        return result.get(timeout=timeout, interval=0.1)
    except CeleryTimeout:
        raise TimeoutError(f"no worker answered the {what} within {timeout:.0f} s: is a worker "
                           f"consuming the `cpu` queue running (`cotdistill up`)?") from None
    finally:
        result.forget()


def parse_yaml(text: str):
    """The value of YAML typed into a page (loader options, a base config), parsed under the limits
    of config files (cotdistill.safe_load: size, aliases, depth, duplicate keys, plain types only);
    ValueError with one sentence if it breaks one."""
    from cotdistill.safe_load import load_yaml
    return load_yaml(text)
