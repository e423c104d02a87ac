"""What every part of the jobs API shares: its sessions, its error, its date format."""

from __future__ import annotations

import functools
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy.orm import Session


class NotFound(LookupError):
    """No such run, experiment, job, attribution or rationale set."""


@functools.cache
def _sessions(url: str):
    from worker.db import make_engine, session_factory, upgrade
    upgrade(url)
    return session_factory(make_engine(url))


@contextmanager
def session() -> Session:
    """A session on $COTDISTILL_DATABASE_URL (migrated on first use), closed afterwards."""
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
