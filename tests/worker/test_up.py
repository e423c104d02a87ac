"""`cotdistill up` (without the app): one command starts the embedded stack; Ctrl-C stops it cleanly
and hands a running run back to the queue, so the next `up` resumes it from its checkpoint."""

import signal
import subprocess
import sys

import click
import pytest

from tests.worker.stack import ROOT, JobStack, sigint_as_from_a_terminal


@pytest.fixture
def stack(tmp_path, monkeypatch):
    s = JobStack(tmp_path, monkeypatch)
    yield s
    s.close()


def start_up(stack: JobStack, log_name: str) -> subprocess.Popen:
    log = open(stack.home / log_name, "ab")
    return subprocess.Popen([sys.executable, "-m", "worker.cli", "up", "--no-app"], cwd=ROOT, env=stack.env,
                            stdout=log, stderr=subprocess.STDOUT, preexec_fn=sigint_as_from_a_terminal)


def stop_up(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGINT)
    return proc.wait(60)


def test_up_runs_ctrl_c_hands_back_and_next_up_resumes(stack):
    [run_id] = stack.submit(steps=150)
    up = start_up(stack, "up1.log")
    stack.wait([run_id], (), until=lambda r: r["status"] == "running" and r["step"] >= 12, timeout=240)
    assert stop_up(up) == 0
    assert "cotdistill up: stopped" in stack.log("up1")
    run = stack.runs([run_id])[run_id]
    assert run["status"] == "queued" and run["attempt"] == 0      # handed back, not failed
    # No worker survives its `up`.
    assert subprocess.run(["pgrep", "-f", f"COTDISTILL_HOME={stack.home}"], capture_output=True).stdout == b""
    up = start_up(stack, "up2.log")
    try:
        run = stack.wait([run_id], "succeeded", timeout=400)[run_id]
    finally:
        assert stop_up(up) == 0
    assert run["summary"]["resumed_from_step"] >= 10 and run["attempt"] == 0


def test_up_refuses_a_public_address_without_password(stack, monkeypatch):
    env = {k: v for k, v in stack.env.items() if k != "COTDISTILL_PASSWORD"}
    r = subprocess.run([sys.executable, "-m", "worker.cli", "up", "--host", "0.0.0.0"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "COTDISTILL_PASSWORD" in r.stderr


@pytest.mark.parametrize("password", ["short", " 1 2 3 4 5 6 7 ", "        "])
def test_up_refuses_a_password_of_fewer_than_eight_characters(monkeypatch, password):
    from worker.stack import Stack
    monkeypatch.setenv("COTDISTILL_PASSWORD", password)
    with pytest.raises(click.ClickException) as e:
        Stack(host="0.0.0.0").check()
    assert e.value.message == ("COTDISTILL_PASSWORD has fewer than 8 non-space characters: set a longer one "
                               "to bind the app to 0.0.0.0")
    monkeypatch.setenv("COTDISTILL_PASSWORD", " 1 2 3 4 5 6 7 8 ")
    Stack(host="0.0.0.0").check()                     # eight characters, spaces aside: accepted
