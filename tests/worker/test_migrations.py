"""Alembic migrations from empty to head and back, on a real SQLite file and a real PostgreSQL."""

import os
import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from tests.conftest import ROOT
from worker.db import current, downgrade, make_engine, upgrade
from worker.models import Base

TABLES = {"rationale_sets", "examples", "experiments", "runs", "metrics", "predictions", "attributions", "workers",
          "attribution_scores", "jobs", "run_events"}
HEAD = "0005_ckpt"


def check_round_trip(url):
    upgrade(url)
    engine = make_engine(url)
    assert TABLES <= set(inspect(engine).get_table_names())
    assert current(url) == HEAD
    with engine.connect() as conn:                   # the models and the migrations agree
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    downgrade(url)
    assert not TABLES & set(inspect(engine).get_table_names())
    assert current(url) is None
    engine.dispose()


def test_sqlite_upgrade_and_downgrade(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    check_round_trip(url)
    with make_engine(url).connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_postgresql_upgrade_and_downgrade(postgres_url):
    check_round_trip(postgres_url)


def test_db_upgrade_command(tmp_path):
    env = {**os.environ, "COTDISTILL_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
           "COTDISTILL_HOME": str(tmp_path)}
    run = lambda *a: subprocess.run([sys.executable, "-m", "worker.cli", *a], cwd=ROOT, env=env,  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    missing = run("db", "current")                     # only `db upgrade` and `up` create the file
    assert missing.returncode == 2 and "no database at" in missing.stderr, missing.stderr
    up = run("db", "upgrade")
    assert up.returncode == 0, up.stderr
    assert f"database at revision {HEAD}" in up.stdout
    assert run("db", "current").stdout.strip() == HEAD
    assert "datasets" in run("--help").stdout          # the science commands are mounted too


def test_submit_and_status_commands(tmp_path):
    env = {**os.environ, "COTDISTILL_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
           "COTDISTILL_HOME": str(tmp_path)}
    run = lambda *a: subprocess.run([sys.executable, "-m", "worker.cli", *a], cwd=ROOT, env=env,  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    assert run("db", "upgrade").returncode == 0
    first = run("submit", "configs/matrix-cqa.yaml")
    assert first.returncode == 0, first.stderr
    assert "9 queued" in first.stdout and "queued runs: 1 2 3 4 5 6 7 8 9" in first.stdout
    assert "0 queued, 9 already" in run("submit", "configs/matrix-cqa.yaml").stdout
    table = run("status", "cqa-placements").stdout.splitlines()
    assert len(table) == 10 and all(" queued " in line for line in table[1:])
    # the arm is named by what differs across the experiment (the placement here)
    assert "commonsenseqa-dsbs before seed 1  (waiting: no worker for queue gpu)" in table[5]
