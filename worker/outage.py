"""The database as this worker process sees it: answering, or lost since when.

    OUTAGE.failed(error)              # a thread met an unreachable database: one log line per outage
    OUTAGE.ok()                       # it answered again: one line saying after how long
    time.sleep(backoff(base, tries))  # how long a loop waits before trying again
    wait_until_back(sessions, stop)   # block, probing with backoff, until it answers

Every thread of a worker that talks to the database (a run's heartbeat, the reconciler, the presence
row, the task that claims a run) reports here, so that a database that goes away gives one line when
it goes and one when it comes back, instead of a traceback per thread per second, and every loop
backs off (doubling its wait up to COTDISTILL_DB_BACKOFF_MAX seconds, default 30). A running run
stops on its own once its heartbeat has gone unconfirmed for half the stale limit
(worker/execution.py); when the database is back, the reconciler re-queues it.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from sqlalchemy import exc, select

log = logging.getLogger("worker.database")
BACKOFF_MAX_S = float(os.environ.get("COTDISTILL_DB_BACKOFF_MAX", 30))


def is_outage(error: BaseException) -> bool:
    """A database that cannot be reached or used right now (connection refused or dropped, database
    gone or not accepting connections), as opposed to a bug in a statement."""
    if isinstance(error, (exc.OperationalError, exc.InterfaceError)):
        return True
    return isinstance(error, exc.DBAPIError) and bool(error.connection_invalidated)


def backoff(base: float, tries: int) -> float:
    """The wait before try number `tries` + 1 of a loop that normally waits `base` seconds."""
    return min(base * 2 ** tries, max(base, BACKOFF_MAX_S))


class Outage:
    def __init__(self):
        self.lock = threading.Lock()
        self.since: float | None = None          # time.monotonic() of the first failure

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, error: BaseException) -> None:
        with self.lock:
            if self.since is not None:
                return
            self.since = time.monotonic()
        from worker.state import STALE_AFTER
        log.warning("database unreachable (%s): this worker backs off and retries; a run it holds stops "
                    "within %g s and is re-queued once the database is back", describe(error),
                    STALE_AFTER.total_seconds() / 2)

    def ok(self) -> None:
        with self.lock:
            if self.since is None:
                return
            lasted, self.since = time.monotonic() - self.since, None
        log.warning("database reachable again after %.0f s", lasted)


OUTAGE = Outage()


def describe(error: BaseException) -> str:
    """The one line worker.db.explain gives (the URL with its password masked), else the error's first line."""
    from worker.db import database_url, explain
    line = explain(error, database_url())
    if line is None:
        line = (str(getattr(error, "orig", None) or error).strip().splitlines() or [type(error).__name__])[0]
    return line


def wait_until_back(sessions, stop: threading.Event | None = None, base: float = 1.0) -> bool:
    """Probe the database (a read of `runs`) with backoff until it answers: True; False when `stop`
    is set first."""
    from worker.models import Run
    tries = 0
    while True:
        try:
            with sessions() as session:
                session.execute(select(Run.id).limit(1)).all()
            OUTAGE.ok()
            return True
        except Exception as e:
            if not is_outage(e):
                raise
            OUTAGE.failed(e)
        wait = backoff(base, tries)
        if stop is not None and stop.wait(wait):
            return False
        if stop is None:
            time.sleep(wait)
        tries += 1
