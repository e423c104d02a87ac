"""Faults a run must survive, on real worker subprocesses: a cancel during a phase longer than the
stale limit, a worker paused past the stale limit while another finishes its run (split brain), the
database lost mid-run, and a full disk. Each asserts what the user sees and what stays on disk."""

import hashlib
import json
import os
import re
import signal
import subprocess
import time

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from tests.worker.conftest import PG_ADMIN
from tests.worker.stack import FAST, JobStack
from tests.worker.test_reliability import counts


@pytest.fixture
def embedded(tmp_path, monkeypatch):
    stack = JobStack(tmp_path, monkeypatch)
    yield stack
    stack.close()


def snapshot(folder) -> dict[str, str]:
    """{relative path: sha256} of every file under `folder`."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def holds_a_lock(engine) -> bool:
    """Whether some other connection is inside a transaction: SQLite's write lock is taken, or a
    PostgreSQL backend is active or idle in a transaction."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except OperationalError:
                return True
            conn.exec_driver_sql("ROLLBACK")
            return False
    with engine.connect() as conn:
        return conn.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                "AND pid <> pg_backend_pid() AND state <> 'idle'")) > 0


def pause(proc, database_url: str) -> None:
    """SIGSTOP `proc` at a moment it is outside any database transaction. A process frozen inside one
    would hold SQLite's write lock (or PostgreSQL's row locks) and block every other worker, which is
    another fault than the one tested here."""
    engine = create_engine(database_url, connect_args={"timeout": 0.2} if database_url.startswith("sqlite") else {})
    try:
        for _ in range(100):
            os.killpg(proc.pid, signal.SIGSTOP)
            if not holds_a_lock(engine):
                return
            os.killpg(proc.pid, signal.SIGCONT)
            time.sleep(0.05)
        raise AssertionError("the worker was inside a transaction at every try")
    finally:
        engine.dispose()


@pytest.mark.parametrize("keep", [False, True])
def test_a_cancel_during_an_evaluation_longer_than_the_stale_limit_is_final(embedded, keep):
    """Every evaluation batch takes 6 s (a patched worker), the stale limit is 3 s: the cancel, asked
    for while the first batch runs, ends the run `cancelled` after that batch; the run is never
    queued again and keeps attempt 0 (today its heartbeat stopped, the reconciler re-queued it as
    attempt 1 and the cancel was forgotten). Its checkpoint (training had ended) goes with the cancel,
    unless the worker has COTDISTILL_KEEP_CHECKPOINTS=1."""
    from pathlib import Path

    from worker import api
    embedded.start_worker("w1", prelude="tests.worker.slow_eval",
                          env={"COTDISTILL_TEST_EVAL_DELAY": "6", "COTDISTILL_STALE_AFTER": "3",
                               "COTDISTILL_KEEP_CHECKPOINTS": "1" if keep else ""})
    [run_id] = api.submit_matrix({"name": "slow-eval", "base": {**embedded_base(), "eval": {
        "mode": "score", "batch_size": 4, "n_boot": 200}}, "factors": {"seed": [0]}})["queued"]
    run = embedded.wait([run_id], (), until=lambda r: r["status"] == "running"
                        and r["progress"].get("phase") == "evaluate", timeout=180)[run_id]
    assert run["progress"]["phase_total"] == 12
    assert api.cancel(run_id) == "running"
    seen = set()
    deadline = time.monotonic() + 60
    while (run := embedded.runs([run_id])[run_id])["status"] == "running" and time.monotonic() < deadline:
        seen.add((run["status"], run["attempt"]))
        time.sleep(0.2)
    seen.add((run["status"], run["attempt"]))
    assert seen <= {("running", 0), ("cancelled", 0)}, seen
    detail = api.run_detail(run_id)
    assert (detail["status"], detail["attempt"], detail["error"]) == ("cancelled", 0, "cancelled by request")
    assert detail["progress"]["phase"] == "evaluate" and detail["progress"]["phase_done"] < 12
    assert re.search(r"'requeued': \[\d", embedded.logs()) is None          # the reconciler never took it
    checkpoint = Path(detail["artifact_uri"]) / "checkpoint"
    assert (Path(detail["artifact_uri"]) / "metrics.jsonl").is_file()
    assert checkpoint.exists() == keep, sorted(p.name for p in Path(detail["artifact_uri"]).iterdir())


def embedded_base() -> dict:
    import copy
    from tests.worker.stack import BASE
    base = copy.deepcopy(BASE)
    base["train"]["steps"] = 4
    return base


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_worker_resumed_after_its_run_was_taken_over_and_finished_writes_nothing(
        tmp_path, monkeypatch, request, database):
    """w1 is paused (SIGSTOP) mid-training past the stale limit; w2 takes the run over (attempt 1) and
    finishes it; w1 resumes (SIGCONT) and stops without touching the run's folder or rows: metrics,
    predictions, summary and model stay those of attempt 1, and no checkpoint comes back."""
    from worker import api
    from worker.execution import run_dir
    url = request.getfixturevalue("postgres_url") if database == "postgresql" else None
    stack = JobStack(tmp_path, monkeypatch, database_url=url)
    try:
        w1 = stack.start_worker("w1")
        [run_id] = stack.submit(steps=24)
        stack.wait([run_id], (), until=lambda r: r["status"] == "running" and r["step"] >= 8, timeout=240)
        pause(w1, stack.database_url)
        w2 = stack.start_worker("w2")
        run = stack.wait([run_id], "succeeded", timeout=240)[run_id]
        assert run["attempt"] == 1 and run["worker"].endswith(f":{w2.pid}")
        folder = run_dir(run_id)
        finished = snapshot(folder)
        assert {"metrics.jsonl", "predictions.jsonl", "summary.json", "model/model.safetensors"} <= set(finished)
        os.killpg(w1.pid, signal.SIGCONT)
        stack.wait_log("w1", "stopped: another worker holds it", timeout=60)
        assert snapshot(folder) == finished
        assert not (folder / "checkpoint").exists()
        steps = [json.loads(line)["step"] for line in (folder / "metrics.jsonl").read_text().splitlines()]
        assert steps == list(range(2, 25, 2))
        detail = api.run_detail(run_id)
        assert (detail["status"], detail["attempt"], detail["summary"]) == ("succeeded", 1, run["summary"])
        assert [p["step"] for p in api.curves([run_id], "loss")] == list(range(2, 25, 2))
        assert counts(stack.database_url, run_id) == (12, 12, 0)
    finally:
        stack.close()


def test_a_lost_database_stops_the_run_in_one_line_and_it_resumes_once_back(tmp_path, monkeypatch, postgres_url):
    """PostgreSQL stops accepting connections (and drops those open) mid-run: the worker stops the run
    within a minute, saying so in a line or two, no traceback, and stays quiet while the database is
    away; once it is back the reconciler re-queues the run, which resumes from its checkpoint."""
    lease_s = float(FAST["COTDISTILL_STALE_AFTER"]) / 2        # the workers' (worker.execution.LEASE_S)
    stack = JobStack(tmp_path, monkeypatch, database_url=postgres_url)
    name = postgres_url.rsplit("/", 1)[1]
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")

    def connections(allowed: bool) -> None:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allowed).lower()}'))
            if not allowed:
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                             {"n": name})

    try:
        stack.start_worker("w1", env={"COTDISTILL_DB_BACKOFF_MAX": "2"})
        [run_id] = stack.submit(steps=60)
        stack.wait([run_id], (), until=lambda r: r["status"] == "running" and r["step"] >= 10, timeout=240)
        mark = len(stack.log("w1"))
        connections(False)
        lost_at = time.monotonic()
        stack.wait_log("w1", "stopped: the database did not answer", timeout=60)
        stopped_after = time.monotonic() - lost_at
        time.sleep(5)                             # the outage goes on: the worker must stay quiet
        during = stack.log("w1")[mark:]
        connections(True)
        run = stack.wait([run_id], "succeeded", timeout=240)[run_id]
        assert stopped_after < 60
        assert "Traceback" not in during, during
        lines = during.strip().splitlines()
        assert len(lines) <= 3, during
        reason = f"cannot connect to {postgres_url}: "      # then the server's words
        assert sum(f"database unreachable ({reason}" in line for line in lines) == 1, during
        stopped = [line for line in lines if f"'stopped: the database did not answer for {lease_s:g} s ({reason}" in line]
        assert len(stopped) == 1 and stopped[0].endswith(
            "); the run stopped writing, and the reconciler re-queues it from its last checkpoint once the "
            "database is back'"), during
        assert run["attempt"] == 1 and run["summary"]["train_steps"] == 60
        assert run["summary"]["resumed_from_step"] >= 10
        assert "database reachable again" in stack.log("w1")
        assert counts(postgres_url, run_id) == (12, 12, 0)
    finally:
        stack.close()
        connections(True)
        admin.dispose()


def test_a_full_disk_fails_the_run_in_one_sentence_and_a_retry_resumes(tmp_path, monkeypatch, embedded):
    """The artifacts live on a 9 MiB file system: the first checkpoint (6 MB) fits, the second does
    not. The run fails with one sentence naming the folder, the step-5 checkpoint stays good and no
    half-written one is left; with room made, a retry resumes from step 5 and succeeds."""
    from cotdistill.train.checkpoints import candidates, verify
    from worker import api
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=9m", "tmpfs", str(disk)], check=True)
    try:
        monkeypatch.setenv("COTDISTILL_ARTIFACTS", str(disk))
        embedded.env["COTDISTILL_ARTIFACTS"] = str(disk)
        embedded.start_worker("w1")
        [run_id] = embedded.submit(steps=10)
        embedded.wait([run_id], "failed", timeout=240)
        folder = disk / f"run-{run_id}"
        detail = api.run_detail(run_id)
        assert detail["error"] == (f"no space left on device while writing the checkpoint to {folder / 'checkpoint'}: "
                                   f"free space and retry the run; the last good checkpoint (step 5) is intact")
        [kept] = candidates(folder / "checkpoint")
        assert kept.step == 5
        verify(kept)
        assert not list(folder.rglob("*.tmp"))
        subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)
        assert api.retry(run_id)["queued"]
        run = embedded.wait([run_id], "succeeded", timeout=240)[run_id]
        assert run["summary"]["resumed_from_step"] == 5 and run["summary"]["train_steps"] == 10
    finally:
        embedded.close()
        subprocess.run(["umount", "-l", str(disk)], check=False)
