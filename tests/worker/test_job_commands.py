"""The job commands as a user types them: submit, status, show, cancel, retry (no worker running)."""

import subprocess
import sys

import yaml

from tests.worker.stack import BASE, ROOT


def test_submit_cancel_retry_show(tmp_path, monkeypatch):
    env = {"COTDISTILL_HOME": str(tmp_path), "COTDISTILL_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    import os
    full = {**os.environ, **env}
    run = lambda *a: subprocess.run([sys.executable, "-m", "worker.cli", *a], cwd=ROOT, env=full,  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
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
