"""Conditional state transitions on a real SQLite file and a real PostgreSQL database."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from worker.models import Run, utcnow
from worker.state import claim, finish, heartbeat, request_cancel


def new_run(Session) -> int:
    with Session() as s:
        run = Run(config={}, config_hash="h", status="queued")
        s.add(run)
        s.commit()
        return run.id


def test_only_one_of_many_concurrent_claims_wins(sessions):
    run_id = new_run(sessions)
    wins, start = [], threading.Barrier(8)

    def worker(name):
        with sessions() as s:
            start.wait()
            if claim(s, run_id, name):
                wins.append(name)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1
    with sessions() as s:
        run = s.get(Run, run_id)
        assert run.status == "running" and run.worker == wins[0]


def test_stale_heartbeat_can_be_taken_over_and_the_old_worker_is_told(sessions):
    run_id = new_run(sessions)
    with sessions() as s:
        assert claim(s, run_id, "old")
        assert not claim(s, run_id, "new")                       # fresh heartbeat: not claimable
        s.execute(update(Run).where(Run.id == run_id).values(heartbeat_at=utcnow() - timedelta(minutes=5)))
        s.commit()
        assert claim(s, run_id, "new", stale_after=timedelta(seconds=60))
        assert not heartbeat(s, run_id, "old", step=3)           # the old worker must stop
        assert heartbeat(s, run_id, "new", step=3, progress={"loss": 1.5})
        assert not finish(s, run_id, "old", "succeeded")
        assert finish(s, run_id, "new", "succeeded", summary={"accuracy": 0.5})
        run = s.get(Run, run_id)
        s.refresh(run)
        assert (run.status, run.step, run.accuracy, run.progress) == ("succeeded", 3, 0.5, {"loss": 1.5})
        assert not claim(s, run_id, "third")                     # a finished run is never claimed


def test_taking_over_a_stale_run_counts_an_attempt_up_to_the_limit(sessions):
    """Whether the reconciler re-queues a dead worker's run or a worker claims it straight from
    `running` (its message redelivered first), the takeover is attempt + 1; at the limit the claim is
    refused and the reconciler fails the run."""
    run_id = new_run(sessions)
    stale = lambda s: (s.execute(update(Run).where(Run.id == run_id)      # noqa: E731
                                 .values(heartbeat_at=utcnow() - timedelta(minutes=5))), s.commit())
    with sessions() as s:
        assert claim(s, run_id, "w1", max_attempts=3)
        attempt = lambda: s.get(Run, run_id, populate_existing=True).attempt  # noqa: E731
        assert attempt() == 0                                    # from queued: the first attempt
        stale(s)
        assert claim(s, run_id, "w2", stale_after=timedelta(seconds=60), max_attempts=3)
        assert attempt() == 1
        stale(s)
        assert claim(s, run_id, "w3", stale_after=timedelta(seconds=60), max_attempts=3)
        assert attempt() == 2
        stale(s)
        assert not claim(s, run_id, "w4", stale_after=timedelta(seconds=60), max_attempts=3)
        assert attempt() == 2 and s.get(Run, run_id).worker == "w3"


def test_cancel_queued_and_running(sessions):
    queued, running = new_run(sessions), new_run(sessions)
    with sessions() as s:
        assert request_cancel(s, queued) == "cancelled"
        assert not claim(s, queued, "w")
        assert claim(s, running, "w")
        assert request_cancel(s, running) == "running"           # cooperative: the worker stops it
        assert not heartbeat(s, running, "w", step=1)            # ...when its next heartbeat says so
        assert finish(s, running, "w", "cancelled")
        assert request_cancel(s, 999_999) is None
    with pytest.raises(ValueError, match="status must be one of"):
        with sessions() as s:
            finish(s, running, "w", "paused")
