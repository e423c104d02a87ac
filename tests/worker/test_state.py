"""Conditional state transitions on a real SQLite file and a real PostgreSQL database."""

import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from worker.models import Run, utcnow
from worker.state import (claim, complete, finish, heartbeat, holds, mark_sent, recover_own, request_cancel,
                          requeue_own)


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


def _age(s, run_id, minutes=5):
    s.execute(update(Run).where(Run.id == run_id).values(heartbeat_at=utcnow() - timedelta(minutes=minutes)))
    s.commit()


def _row(s, run_id):
    return s.get(Run, run_id, populate_existing=True)


def test_a_cancelled_run_keeps_its_heartbeat_and_is_never_queued_again(sessions, monkeypatch):
    """While a cancelled run stops (a long evaluation batch), its heartbeat goes on; if its worker dies
    before it stops, the reconciler ends it `cancelled` instead of re-queueing it as a new attempt."""
    from worker.presence import aware
    from worker.reconcile import recover_stale
    run_id = new_run(sessions)
    with sessions() as s:
        assert claim(s, run_id, "w")
        assert request_cancel(s, run_id) == "running"
        _age(s, run_id)
        assert not heartbeat(s, run_id, "w", step=1)             # stop...
        assert utcnow() - aware(_row(s, run_id).heartbeat_at) < timedelta(seconds=30)   # ...but alive
        assert holds(s, run_id, "w", attempt=0)
        assert recover_stale(s) == {"requeued": [], "failed": []}
        _age(s, run_id)                                          # its worker died before it stopped
        assert recover_stale(s) == {"requeued": [], "failed": [], "cancelled": [run_id]}
        run = _row(s, run_id)
        assert (run.status, run.attempt) == ("cancelled", 0)
        assert run.error == "cancelled by request (its worker w stopped answering before it stopped)"
        assert not claim(s, run_id, "w2", stale_after=timedelta(seconds=0))


def test_a_cancelled_run_handed_back_or_recovered_ends_cancelled(sessions):
    handed, recovered = new_run(sessions), new_run(sessions)
    with sessions() as s:
        for run_id in (handed, recovered):
            assert claim(s, run_id, "w")
            request_cancel(s, run_id)
        assert requeue_own(s, handed, "w")                       # a worker shutting down
        assert recover_own(s, recovered, "w", "rank 1 was killed")
        for run_id in (handed, recovered):
            run = _row(s, run_id)
            assert (run.status, run.attempt, run.error) == ("cancelled", 0, "cancelled by request")


def test_the_attempt_is_a_fencing_token(sessions):
    """The same worker name (one process, or a pid reused) holding attempt 0, then again attempt 1
    after a takeover: attempt 0 can no longer heartbeat, finish or complete the run."""
    run_id = new_run(sessions)
    with sessions() as s:
        assert claim(s, run_id, "w")
        _age(s, run_id)
        assert claim(s, run_id, "w", stale_after=timedelta(seconds=60))
        assert _row(s, run_id).attempt == 1
        assert not heartbeat(s, run_id, "w", step=5, attempt=0) and not holds(s, run_id, "w", attempt=0)
        assert not finish(s, run_id, "w", "failed", error="late", attempt=0)
        assert not complete(s, run_id, "w", {"accuracy": 0.1}, [], attempt=0)
        assert heartbeat(s, run_id, "w", step=5, attempt=1) and holds(s, run_id, "w", attempt=1)
        assert complete(s, run_id, "w", {"accuracy": 0.5}, [], attempt=1)
        run = _row(s, run_id)
        assert (run.status, run.accuracy, run.error) == ("succeeded", 0.5, None)


@pytest.mark.parametrize("error", [FileNotFoundError("checkpoint-15/state.pt"), RuntimeError("boom")])
def test_an_error_met_after_a_takeover_stops_the_old_attempt_without_failing_the_run(sessions, error):
    """The old worker, paused past the stale limit mid-write, resumes after the new attempt finished
    and removed the checkpoint it was writing: its error is not the run's. supervise records nothing
    and says the run is another worker's (the fault test's interleaving, made deterministic)."""
    from worker.execution import Heartbeat, supervise
    run_id = new_run(sessions)
    with sessions() as s:
        assert claim(s, run_id, "old")
        s.execute(update(Run).where(Run.id == run_id).values(heartbeat_at=utcnow() - timedelta(minutes=5)))
        s.commit()
        assert claim(s, run_id, "new", stale_after=timedelta(seconds=60))
        assert finish(s, run_id, "new", "succeeded", summary={"accuracy": 1.0}, attempt=1)

    def work():
        raise error

    beat = Heartbeat(sessions, run_id, "old", attempt=0)
    result, outcome = supervise(sessions, run_id, "old", beat, work)
    assert result is None
    assert outcome == f"stopped: another worker holds it (this attempt then met {type(error).__name__}: {error})"
    with sessions() as s:
        run = s.get(Run, run_id)
        assert (run.status, run.worker, run.attempt, run.error, run.accuracy) == ("succeeded", "new", 1, None, 1.0)


def test_an_error_of_the_attempt_that_holds_the_run_fails_it(sessions):
    from worker.execution import Heartbeat, supervise
    run_id = new_run(sessions)
    with sessions() as s:
        assert claim(s, run_id, "w")

    def work():
        raise RuntimeError("boom")

    result, outcome = supervise(sessions, run_id, "w", Heartbeat(sessions, run_id, "w", attempt=0), work)
    assert (result, outcome) == (None, "failed: RuntimeError: boom")
    with sessions() as s:
        run = s.get(Run, run_id)
        assert run.status == "failed" and run.error.startswith("RuntimeError: boom\n\nTraceback")


def test_a_message_is_recorded_only_for_a_row_still_queued(sessions):
    """The reconciler read a queued run, a worker claimed it, then the reconciler came to send: nothing
    is recorded (and reconcile.send sends nothing), so the run's queueing never follows its start
    (the Runs page's 'ran for' went blank when it did)."""
    run_id = new_run(sessions)
    with sessions() as s:
        assert mark_sent(s, run_id, "t1")
        sent = s.get(Run, run_id, populate_existing=True).enqueued_at
        assert claim(s, run_id, "w")
        assert not mark_sent(s, run_id, "t2")
        run = s.get(Run, run_id, populate_existing=True)
        assert (run.task_id, run.enqueued_at, run.status) == ("t1", sent, "running")
