"""The job commands as a user types them: submit, status, show, cancel, retry (no worker running)."""

import subprocess
import sys

import yaml

import cotdistill
from tests.worker.stack import BASE, ROOT


def cli(env: dict):
    """`cotdistill …` as a subprocess in `env`, its output captured."""
    return lambda *a: subprocess.run([sys.executable, "-m", "worker.cli", *a], cwd=ROOT, env=env,
                                     capture_output=True, text=True, timeout=120)


def test_submit_cancel_retry_show(tmp_path, monkeypatch):
    env = {"COTDISTILL_HOME": str(tmp_path), "COTDISTILL_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    import os
    run = cli({**os.environ, **env})
    assert run("db", "upgrade").returncode == 0
    matrix = tmp_path / "m.yaml"
    matrix.write_text(yaml.safe_dump({"name": "cmds", "base": BASE, "factors": {"seed": [0, 1]}}))
    out = run("submit", str(matrix))
    assert out.returncode == 0 and "queued runs: 1 2" in out.stdout, out.stderr
    # The messages wait in the embedded broker's folder until a worker starts.
    assert len(list((tmp_path / "broker" / "queue").glob("*.gpu.msg"))) == 2
    assert "run 1: cancelled" in run("cancel", "1").stdout
    status = run("status", "cmds").stdout.splitlines()
    assert " cancelled " in status[1] and " queued " in status[2]
    refused = run("retry", "2")
    assert refused.returncode != 0 and "only failed or cancelled runs can be retried" in refused.stderr
    assert "run 1: queued again" in run("retry", "1").stdout
    shown = run("show", "1").stdout
    assert shown.startswith("run 1 (cmds): queued, attempt 1")
    missing = run("cancel", "99")
    assert missing.returncode != 0 and "no run 99" in missing.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "bad", "base": BASE, "factors": {"placement": ["sideways"]}}))
    failed = run("submit", str(bad))
    assert failed.returncode != 0 and "sideways" in failed.stderr


def test_submit_says_what_it_reused_and_refuses_what_it_should(tmp_path):
    import os

    from worker.db import make_engine, session_factory
    from worker.models import Run
    url = f"sqlite:///{tmp_path / 'c.db'}"
    run = cli({**os.environ, "COTDISTILL_HOME": str(tmp_path), "COTDISTILL_DATABASE_URL": url})
    assert run("db", "upgrade").returncode == 0
    matrix = tmp_path / "m.yaml"
    matrix.write_text(yaml.safe_dump({"name": "e", "base": BASE, "factors": {"seed": [0, 0]}}))
    out = run("submit", str(matrix))
    assert out.returncode == 0 and "1 duplicate cell(s) identical to an earlier cell" in out.stdout, out.stderr
    engine = make_engine(url)
    with session_factory(engine)() as s:                      # made by results version 1
        old = s.get(Run, 1)
        old.status, old.config_hash, old.summary = "succeeded", "0ld0ld0ld0ld", {"accuracy": 0.5}
        s.commit()
    engine.dispose()
    other = tmp_path / "o.yaml"
    other.write_text(yaml.safe_dump({"name": "o", "base": BASE, "factors": {"seed": [0]}}))
    out = run("submit", str(other))
    assert ("not reused: runs 1 have the same settings but an older results version "
            f"(now {cotdistill.RESULTS_VERSION})") in out.stdout
    assert "queued runs: 2" in out.stdout
    assert "reused runs" not in out.stdout
    matrix.write_text(yaml.safe_dump({"name": "e", "base": BASE, "factors": {"seed": [3]}}))
    refused = run("submit", str(matrix))
    assert refused.returncode != 0 and "--new-version to make e@2" in refused.stderr
    assert "experiment 'e@2'" in run("submit", str(matrix), "--new-version").stdout
    big = tmp_path / "big.yaml"
    big.write_text(yaml.safe_dump({"name": "big", "base": BASE, "factors": {"seed": list(range(501))}}))
    refused = run("submit", str(big))
    assert refused.returncode != 0 and "501 cells, more than 500" in refused.stderr and "--yes" in refused.stderr
