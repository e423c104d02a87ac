"""Database engine, sessions and migrations.

    engine = make_engine()            # $COTDISTILL_DATABASE_URL, else SQLite under $COTDISTILL_HOME
    upgrade(engine.url)               # Alembic migrations to head (`cotdistill db upgrade`)

SQLite runs in WAL mode with a busy timeout so that a worker and the app can share the file.

A database that cannot be reached or written becomes one sentence naming the URL (password masked):
`explain(exc, url)` is what the CLI prints and the app shows instead of a traceback, and
`require_database(url)` refuses a SQLite file that does not exist yet, so that a typo in
$COTDISTILL_DATABASE_URL is not silently a new, empty database.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from contextlib import contextmanager

from sqlalchemy import create_engine, event, exc, text
from sqlalchemy.pool import NullPool
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import sessionmaker

from cotdistill.paths import home

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def database_url() -> str:
    return os.environ.get("COTDISTILL_DATABASE_URL") or f"sqlite:///{home() / 'cotdistill.db'}"


class DatabaseUnavailable(Exception):
    """The database cannot be used as configured; the message is the one line to show."""


def masked(url: str | URL) -> str:
    """The URL with any password as ***; a string that does not parse is masked by pattern."""
    try:
        parsed = make_url(url)
        # Without a password the URL as written reads best (rendering escapes `file:` to `file%3A`).
        return parsed.render_as_string(hide_password=True) if parsed.password else str(url)
    except exc.ArgumentError:
        return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", str(url))


def sqlite_path(url: str | URL) -> Path | None:
    """The file of a SQLite URL (None for other backends and in-memory databases)."""
    url = make_url(url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database.removeprefix("file:"))       # `file:` URIs (?uri=true) name a file too


def require_database(url: str | URL | None = None) -> None:
    """Refuse a SQLite file that does not exist: only `db upgrade` and `up` create the database."""
    url = url or database_url()
    try:
        path = sqlite_path(url)
    except exc.ArgumentError as e:
        raise DatabaseUnavailable(explain(e, url)) from None
    if path is not None and not path.exists():
        raise DatabaseUnavailable(f"no database at {path}; run `cotdistill db upgrade` or `cotdistill up` first")


_NOISE = (r"^connection failed: ", r"^connection to server at [^,]+, port \d+ failed: ", r"^FATAL:\s+",
          r"^\(\S+\) ")


def explain(error: BaseException, url: str | URL) -> str | None:
    """One line for a connection or permission error on the database at `url`; None for any other
    error (a bug is better shown with its traceback)."""
    where = masked(url)
    if isinstance(error, DatabaseUnavailable):
        return str(error)
    if isinstance(error, exc.NoSuchModuleError):
        return f"cannot connect to {where}: unknown database kind (use sqlite:///PATH or postgresql+psycopg://…)"
    if isinstance(error, exc.ArgumentError) and "URL" in str(error):
        return f"cannot connect to {where}: not a database URL (use sqlite:///PATH or postgresql+psycopg://…)"
    if isinstance(error, PermissionError) and error.filename:
        return f"cannot use the database at {where}: no permission to write {error.filename}"
    if isinstance(error, exc.OperationalError) or (
            isinstance(error, exc.ProgrammingError) and "permission denied" in str(error.orig).lower()):
        reason = str(error.orig).strip().splitlines()[0] if str(error.orig).strip() else type(error.orig).__name__
        for pattern in _NOISE:
            reason = re.sub(pattern, "", reason)
        return f"cannot connect to {where}: {reason[:1].lower()}{reason[1:]}"
    return None


def make_engine(url: str | URL | None = None) -> Engine:
    url = make_url(url or database_url())
    if url.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(conn, _record):
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
        return engine
    # A server that stops answering (a network partition) fails a connect in seconds instead of
    # hanging a heartbeat for the kernel's TCP timeout (worker/outage.py handles the failure).
    timeout = {} if "connect_timeout" in url.query else {"connect_timeout": 10}
    return create_engine(url, pool_pre_ping=True, connect_args=timeout)


def session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(url: str | URL):
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", make_url(url).render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


@contextmanager
def migration_lock(url: str | URL):
    """One migrating process at a time: a worker and the app starting together on a new database
    would otherwise both create the tables. A file lock beside a SQLite file, an advisory lock on
    PostgreSQL."""
    url = make_url(url)
    if (path := sqlite_path(url)) is not None:
        import fcntl
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(f"{path}.migrate.lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield
        return
    if url.get_backend_name() == "postgresql":
        engine = create_engine(url, poolclass=NullPool)
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(4242001)"))
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(4242001)"))
        engine.dispose()
        return
    yield


def upgrade(url: str | URL | None = None, revision: str = "head") -> None:
    from alembic import command
    url = url or database_url()
    with migration_lock(url):
        command.upgrade(alembic_config(url), revision)


def downgrade(url: str | URL | None = None, revision: str = "base") -> None:
    from alembic import command
    command.downgrade(alembic_config(url or database_url()), revision)


def current(url: str | URL | None = None) -> str | None:
    from alembic.runtime.migration import MigrationContext
    with make_engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
