"""Fixtures of the job-system tests: a fresh PostgreSQL database per test."""

import os
import uuid

import pytest
from sqlalchemy import create_engine, text

PG_ADMIN = os.environ.get("COTDISTILL_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def postgres_url():
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"cotdistill_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request, tmp_path):
    """Sessions on a migrated database: a SQLite file, then a fresh PostgreSQL database."""
    from worker.db import make_engine, session_factory, upgrade
    url = f"sqlite:///{tmp_path / 'db.sqlite'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    upgrade(url)
    engine = make_engine(url)
    yield session_factory(engine)
    engine.dispose()
