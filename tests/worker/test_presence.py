"""Worker presence and why a queued run waits: the pure reason with exact wording, the queue order
from real rows on SQLite and PostgreSQL, and a real worker process announcing its queues."""

from datetime import timedelta

import pytest

from worker import presence
from worker.db import upgrade
from worker.models import Job, Run, WorkerPresence, utcnow
from worker.presence import announce, leave, queue_reasons, wait_reason, workers


# ------------------------------------------------------------------------------------------ wait_reason

@pytest.mark.parametrize("kwargs, reason", [
    ({"position": 0, "running": 0, "capacity": 0}, "no worker for queue gpu"),
    ({"position": 3, "running": 1, "capacity": 0, "last_seen_s": 45.7}, "no worker for queue gpu (the last one was seen 45 s ago)"),
    ({"position": 0, "running": 0, "capacity": 0, "last_seen_s": 600}, "no worker for queue gpu (the last one was seen 10 min ago)"),
    ({"position": 0, "running": 0, "capacity": 0, "last_seen_s": 3 * 3600, "queue": "a100"},
     "no worker for queue a100 (the last one was seen 3 h ago)"),
    ({"position": 0, "running": 0, "capacity": 1}, "starting: a worker is free"),
    ({"position": 0, "running": 1, "capacity": 2}, "starting: a worker is free"),
    ({"position": 0, "running": 1, "capacity": 1}, "behind 1 run"),
    ({"position": 4, "running": 1, "capacity": 1}, "behind 5 runs"),
    ({"position": 2, "running": 2, "capacity": 2}, "behind 4 runs"),
    ({"position": 1, "running": 1, "capacity": 1, "jobs_ahead": 1}, "behind 1 run and 1 job"),
    ({"position": 1, "running": 1, "capacity": 1, "jobs_ahead": 2}, "behind 2 jobs"),
])
def test_wait_reason_wording(kwargs, reason):
    assert wait_reason(**kwargs) == reason


# ------------------------------------------------------------------------------------------ rows

def add(s, model, status, sent_s_ago, **extra):
    now = utcnow()
    row = (Run(config={}, config_hash="h", status=status, **extra) if model is Run
           else Job(kind="generation", params={}, status=status, **extra))
    row.enqueued_at = now - timedelta(seconds=sent_s_ago)
    s.add(row)
    s.commit()
    return row.id


def test_queue_reasons_follow_the_send_order_and_the_workers(sessions):
    with sessions() as s:
        running = add(s, Run, "running", 100)
        late = add(s, Run, "queued", 10)
        early = add(s, Run, "queued", 50)
        add(s, Job, "queued", 30)                      # a generation job sits between them
        done = add(s, Run, "succeeded", 200)
        assert queue_reasons(s) == {late: "no worker for queue gpu", early: "no worker for queue gpu"}

        announce(s, "cpu-host:1", ["cpu"])               # a light worker does not take runs
        assert queue_reasons(s)[early] == "no worker for queue gpu"
        announce(s, "gpu-host:2", ["cpu", "gpu"])
        assert queue_reasons(s) == {early: "behind 1 run", late: "behind 2 runs and 1 job"}
        announce(s, "gpu-host:3", ["gpu"], concurrency=2)
        assert queue_reasons(s) == {early: "starting: a worker is free", late: "behind 2 runs and 1 job"}
        assert done not in queue_reasons(s) and running not in queue_reasons(s)

        leave(s, "gpu-host:3")
        s.query(WorkerPresence).filter_by(name="gpu-host:2").update(
            {"heartbeat_at": utcnow() - presence.STALE_AFTER - timedelta(seconds=90)})
        s.commit()
        assert queue_reasons(s)[early].startswith("no worker for queue gpu (the last one was seen 2 min ago)")
        listed = {w["name"]: w for w in workers(s)}
        assert set(listed) == {"cpu-host:1", "gpu-host:2"}
        assert listed["cpu-host:1"]["alive"] and not listed["gpu-host:2"]["alive"]
        assert listed["gpu-host:2"]["queues"] == ["cpu", "gpu"]


def test_list_runs_says_why_a_queued_run_waits(tmp_path, monkeypatch):
    from worker import api
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path))
    monkeypatch.setenv("COTDISTILL_DATABASE_URL", f"sqlite:///{tmp_path / 'api.db'}")
    monkeypatch.delenv("COTDISTILL_BROKER_URL", raising=False)
    from worker.db import upgrade
    upgrade(f"sqlite:///{tmp_path / 'api.db'}")
    from tests.worker.stack import BASE
    ids = api.submit_matrix({"name": "waits", "base": BASE, "factors": {"seed": [0, 1]}})["queued"]
    rows = {r["id"]: r for r in api.list_runs(experiment="waits")}
    assert [rows[i]["waiting"] for i in ids] == ["no worker for queue gpu"] * 2
    assert rows[ids[0]]["enqueued_at"] is not None
    with api.session() as s:
        announce(s, "w:1", ["gpu"])
    assert [r["waiting"] for r in api.list_runs(experiment="waits")] == ["starting: a worker is free", "behind 1 run"]
    assert [w["name"] for w in api.list_workers()] == ["w:1"]


# ------------------------------------------------------------------------------------------ a real worker

def test_a_worker_announces_its_queues_and_leaves_on_shutdown(tmp_path, monkeypatch):
    import signal
    import time

    from tests.worker.stack import JobStack
    from worker import api
    stack = JobStack(tmp_path, monkeypatch)
    proc = stack.start_worker("solo", queues="gpu")
    try:
        deadline = time.monotonic() + 120
        while not api.list_workers():
            assert proc.poll() is None and time.monotonic() < deadline, stack.logs()[-3000:]
            time.sleep(0.3)
        [me] = api.list_workers()
        assert me["queues"] == ["gpu"] and me["concurrency"] == 1 and me["alive"]
        assert me["name"].endswith(f":{proc.pid}")
        stack.kill_worker("solo", signal.SIGTERM)               # warm shutdown: it says goodbye
        assert api.list_workers() == []
    finally:
        stack.close()


def test_queued_jobs_say_why_they_wait_too(sessions):
    with sessions() as s:
        run = add(s, Run, "queued", 50)
        job = add(s, Job, "queued", 20)
        assert queue_reasons(s, kind="job") == {job: "no worker for queue gpu"}
        announce(s, "g:1", ["gpu"])
        assert queue_reasons(s, kind="job") == {job: "behind 1 run"}
        assert queue_reasons(s) == {run: "starting: a worker is free"}
