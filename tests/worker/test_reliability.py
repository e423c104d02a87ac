"""The job system against real components: Celery worker subprocesses, a SQLite file or PostgreSQL,
the embedded file broker or a real Redis server. Each test is a failure a team would meet."""

import signal
import time

import pytest
from sqlalchemy import create_engine, func, select

from tests.worker.stack import JobStack, RedisServer
from worker.models import Metric, Prediction


@pytest.fixture
def embedded(tmp_path, monkeypatch):
    stack = JobStack(tmp_path, monkeypatch)
    yield stack
    stack.close()


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def counts(database_url: str, run_id: int) -> tuple[int, int, int]:
    """(predictions, distinct predicted examples, duplicate metric rows) of a run."""
    engine = create_engine(database_url)
    with engine.connect() as conn:
        n = conn.scalar(select(func.count()).select_from(Prediction).where(Prediction.run_id == run_id))
        distinct = conn.scalar(select(func.count(func.distinct(Prediction.example_id)))
                               .where(Prediction.run_id == run_id))
        metric_rows = conn.execute(select(Metric.step, Metric.name).where(Metric.run_id == run_id)).all()
    engine.dispose()
    return n, distinct, len(metric_rows) - len(set(metric_rows))


def test_run_end_to_end_on_the_embedded_stack(embedded):
    from worker import api
    embedded.start_worker("w1")
    [run_id] = embedded.submit(steps=10)
    run = embedded.wait([run_id], "succeeded")[run_id]
    detail = api.run_detail(run_id)
    assert detail["summary"]["n"] == 12 and detail["summary"]["train_steps"] == 10
    assert run["accuracy"] == detail["summary"]["accuracy"]
    assert counts(embedded.database_url, run_id) == (12, 12, 0)
    loss = api.curves([run_id], "loss")
    assert [p["step"] for p in loss] == [2, 4, 6, 8, 10]
    assert (embedded.home / "artifacts" / f"run-{run_id}" / "summary.json").exists()
    assert run["progress"]["phase"] == "done"


def test_kill_9_mid_training_resumes_from_checkpoint(embedded):
    embedded.start_worker("w1")
    [run_id] = embedded.submit(steps=60)
    embedded.wait([run_id], (), until=lambda r: r["status"] == "running" and r["step"] >= 12, timeout=240)
    embedded.kill_worker("w1", signal.SIGKILL)
    killed_at = embedded.runs([run_id])[run_id]
    assert killed_at["status"] == "running"               # nobody told the database: the heartbeat goes stale
    embedded.start_worker("w2")
    run = embedded.wait([run_id], "succeeded", timeout=240)[run_id]
    assert run["attempt"] == 1
    assert run["summary"]["resumed_from_step"] >= 10      # checkpoints every 5 steps
    assert run["summary"]["train_steps"] == 60
    assert counts(embedded.database_url, run_id) == (12, 12, 0)


def test_cancel_while_running_frees_the_worker(embedded):
    from worker import api
    embedded.start_worker("w1")
    [long_run] = embedded.submit(steps=2000, name="long")
    [next_run] = embedded.submit(steps=4, name="next")
    embedded.wait([long_run], (), until=lambda r: r["status"] == "running" and r["step"] >= 2, timeout=240)
    t0 = time.monotonic()
    assert api.cancel(long_run) == "running"              # a running run is flagged, then stops
    embedded.wait([long_run], "cancelled", timeout=30)
    assert time.monotonic() - t0 < 10
    embedded.wait([next_run], "succeeded", timeout=120)
    detail = api.run_detail(long_run)
    assert detail["error"] == "cancelled by request" and detail["step"] < 2000
    # A cancelled run can be retried: it starts afresh, its checkpoint went with the cancel (cancelled again here).
    assert api.retry(long_run)["queued"]
    embedded.wait([long_run], (), until=lambda r: r["status"] == "running", timeout=60)
    assert api.cancel(long_run) == "running"
    embedded.wait([long_run], "cancelled", timeout=30)


def test_failing_run_is_failed_with_a_readable_error_and_others_finish(embedded):
    from worker import api
    embedded.start_worker("w1")
    bad = api.submit_matrix({"name": "bad", "base": {"data": {"name": "no-such-dataset"}},
                             "factors": {"seed": [0]}})["queued"]
    good = embedded.submit(steps=4)
    runs = embedded.wait(bad + good, ("succeeded", "failed"))
    assert runs[bad[0]]["status"] == "failed" and runs[good[0]]["status"] == "succeeded"
    error = api.run_detail(bad[0])["error"]
    assert "no-such-dataset" in error.splitlines()[0]
    assert "Traceback" in error


def test_two_workers_ten_runs_on_sqlite(embedded):
    embedded.start_worker("w1")
    embedded.start_worker("w2")
    ids = embedded.submit(n=10, steps=3)
    embedded.wait(ids, "succeeded", timeout=300)
    logs = embedded.logs()
    assert "database is locked" not in logs
    assert logs.count("'succeeded'") == 10                # each run executed (and finished) once
    for run_id in ids:
        assert counts(embedded.database_url, run_id) == (12, 12, 0)


def test_two_workers_ten_runs_on_postgresql_and_redis(tmp_path, monkeypatch, postgres_url, redis_server):
    stack = JobStack(tmp_path, monkeypatch, database_url=postgres_url, broker_url=redis_server.url)
    try:
        stack.start_worker("w1")
        stack.start_worker("w2")
        ids = stack.submit(n=10, steps=3)
        stack.wait(ids, "succeeded", timeout=300)
        assert stack.logs().count("'succeeded'") == 10
        for run_id in ids:
            assert counts(postgres_url, run_id) == (12, 12, 0)
    finally:
        stack.close()


def test_redis_restart_loses_no_queued_run(tmp_path, monkeypatch, redis_server):
    """Redis restarts (without persistence: every message is gone) while a worker is busy and runs
    wait in the queue; the worker reconnects, the reconciler re-sends from the database, all finish."""
    stack = JobStack(tmp_path, monkeypatch, broker_url=redis_server.url)
    try:
        stack.start_worker("w1")
        [busy] = stack.submit(steps=40, name="busy")
        stack.wait([busy], (), until=lambda r: r["status"] == "running" and r["step"] >= 2, timeout=120)
        waiting = stack.submit(n=3, steps=3, name="waiting")
        redis_server.stop()
        redis_server.start()
        runs = stack.wait([busy] + waiting, "succeeded", timeout=300)
        assert all(r["attempt"] == 0 for r in runs.values())
        assert "reconciler: " in stack.logs() and "'resent': [" in stack.logs()
    finally:
        stack.close()


def test_worker_lost_too_often_fails_the_run(embedded, monkeypatch):
    """A run whose worker keeps dying is failed after COTDISTILL_MAX_ATTEMPTS, with the reason."""
    from worker import api
    from worker.db import make_engine, session_factory
    from worker.reconcile import recover_stale
    from worker.state import claim
    [run_id] = embedded.submit(steps=3)
    monkeypatch.setattr("worker.reconcile.MAX_ATTEMPTS", 2)
    monkeypatch.setattr("worker.state.STALE_AFTER", __import__("datetime").timedelta(seconds=0))
    sessions = session_factory(make_engine(embedded.database_url))
    with sessions() as s:
        assert claim(s, run_id, "ghost:1")
        assert recover_stale(s) == {"requeued": [run_id], "failed": []}
        assert claim(s, run_id, "ghost:2")
        assert recover_stale(s) == {"requeued": [], "failed": [run_id]}
    detail = api.run_detail(run_id)
    assert detail["status"] == "failed" and "worker lost" in detail["error"] and detail["attempt"] == 1


def test_preview_is_computed_by_a_cpu_worker(embedded):
    from tests.worker.stack import BASE
    from worker import api
    embedded.start_worker("light", queues="cpu")
    rows = api.preview(BASE, [{"placement": "before"}, {"placement": "after", "perturbation": {"kind": "shuffle"}}],
                       n=2, timeout=90)
    assert [(r["placement"], r["perturbation"]) for r in rows] == \
        [("before", "none")] * 2 + [("after", "shuffle")] * 2
    for r in rows:
        assert len(r["tokens"]) == len(r["weights"]) == len(r["ids"]) and any(w > 0 for w in r["weights"])
    assert rows[0]["example_id"] == rows[2]["example_id"]
    # The label is supervised, the question is not (before: rationale then label).
    assert rows[0]["weights"][0] == 0
