"""Database engine, sessions and migrations.

    engine = make_engine()            # $COTDISTILL_DATABASE_URL, else SQLite under $COTDISTILL_HOME
    upgrade(engine.url)               # Alembic migrations to head (`cotdistill db upgrade`)

SQLite runs in WAL mode with a busy timeout so that a worker and the app can share the file.
"""

from __future__ import annotations

import os
from pathlib import Path

from contextlib import contextmanager

from sqlalchemy import create_engine, event, text
from sqlalchemy.pool import NullPool
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import sessionmaker

from cotdistill.students import home

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def database_url() -> str:
    return os.environ.get("COTDISTILL_DATABASE_URL") or f"sqlite:///{home() / 'cotdistill.db'}"


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
    return create_engine(url, pool_pre_ping=True)


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
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        import fcntl
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        with open(f"{url.database}.migrate.lock", "w") as f:
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
