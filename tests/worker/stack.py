"""A real job system for integration tests: worker subprocesses on a SQLite file or PostgreSQL,
with the embedded file broker or a private Redis server, and the jobs API called in-process.

    stack = JobStack(tmp_path, monkeypatch)            # embedded: SQLite + filesystem broker
    stack.start_worker("w1")
    ids = stack.submit(n=2, steps=20)
    stack.wait(ids, "succeeded")
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
FAST = {"COTDISTILL_HEARTBEAT": "0.5", "COTDISTILL_STALE_AFTER": "4", "COTDISTILL_RECONCILE_EVERY": "1",
        "COTDISTILL_RESEND_GRACE": "2", "COTDISTILL_CHECKPOINT_EVERY": "5", "COTDISTILL_BROKER_POLL": "0.05",
        "COTDISTILL_PRESENCE_EVERY": "0.5",
        "OMP_NUM_THREADS": "1"}
BASE = {"data": {"name": "synthetic-count",
                 "options": {"n_train": 48, "n_test": 12, "n_items": 3, "n_objects": 12, "n_colours": 3}},
        "placement": "after", "perturbation": {"kind": "none"},
        "student": {"name": "tiny", "size": "tiny", "vocab_size": 300, "max_length": 64},
        "train": {"steps": 10, "batch_size": 8, "lr": 0.003, "warmup_steps": 2, "log_every": 2},
        "eval": {"mode": "auto", "batch_size": 16, "n_boot": 200}, "seed": 0}   # before: generated


def share_tokenizers(home: Path) -> None:
    """The tokenizers the tiny student trains are cached per data: give a test home the suite's cache."""
    tokenizers = Path(os.environ.get("PYTEST_COTDISTILL_HOME", ROOT / ".state")) / "tokenizers"
    if tokenizers.is_dir():
        (home / "tokenizers").symlink_to(tokenizers)


def sigint_as_from_a_terminal() -> None:
    """preexec_fn for a child that a test stops with SIGINT (Ctrl-C): a process started in the
    background by a non-interactive shell ignores SIGINT, its children inherit that, and Python then
    never raises KeyboardInterrupt; restoring the default lets `up` see Ctrl-C however pytest was run."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A private redis-server on a free port (so a restart disturbs nobody else)."""

    def __init__(self, folder: Path):
        self.port, self.folder, self.proc = free_port(), folder, None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", str(self.folder)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import redis
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


class JobStack:
    def __init__(self, tmp_path: Path, monkeypatch, *, database_url: str | None = None,
                 broker_url: str | None = None):
        self.home = tmp_path / "home"
        self.home.mkdir()
        self.database_url = database_url or f"sqlite:///{self.home / 'cotdistill.db'}"
        env = {"COTDISTILL_HOME": str(self.home), "COTDISTILL_DATABASE_URL": self.database_url,
               "COTDISTILL_ARTIFACTS": str(self.home / "artifacts"), **FAST}
        if broker_url:
            env["COTDISTILL_BROKER_URL"] = broker_url
        else:
            monkeypatch.delenv("COTDISTILL_BROKER_URL", raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        share_tokenizers(self.home)
        from worker.db import upgrade
        upgrade(self.database_url)                 # as `up` does: a bare `worker` refuses a missing file
        self.env = {**os.environ, **env}
        self.workers: dict[str, subprocess.Popen] = {}
        self.n_matrices = 0

    # ------------------------------------------------------------------ processes

    def start_worker(self, name: str, queues: str = "gpu,cpu", *, prelude: str | None = None,
                     env: dict | None = None) -> subprocess.Popen:
        """A worker subprocess; `prelude` names a module it imports first (a test's patch, e.g. a
        slow evaluation), `env` adds to its environment."""
        log = open(self.home / f"{name}.log", "ab")
        start = ["-m", "worker.cli"] if prelude is None else \
            ["-c", f"import {prelude}, runpy; runpy.run_module('worker.cli', run_name='__main__')"]
        proc = subprocess.Popen([sys.executable, *start, "worker", "--queues", queues,
                                 "--name", name, "--loglevel", "INFO"], cwd=ROOT, env={**self.env, **(env or {})},
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.workers[name] = proc
        return proc

    def kill_worker(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.workers.pop(name)
        os.killpg(proc.pid, signal.SIGCONT)      # a paused worker (a test's SIGSTOP) dies too
        os.killpg(proc.pid, sig)
        proc.wait(30)

    def wait_log(self, name: str, text: str, timeout: float = 60) -> str:
        """Poll worker `name`'s log until it contains `text`; fail with the log."""
        deadline = time.monotonic() + timeout
        while text not in (log := self.log(name)):
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in the log of {name} after {timeout} s:\n{log[-6000:]}")
            time.sleep(0.2)
        return log

    def log(self, name: str) -> str:
        return (self.home / f"{name}.log").read_text(errors="replace")

    def logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.home.glob("*.log"))

    def close(self) -> None:
        for name in list(self.workers):
            self.kill_worker(name)

    # ------------------------------------------------------------------ jobs

    def submit(self, *, n: int = 1, name: str | None = None, **train) -> list[int]:
        """A matrix of n runs (seeds 0..n-1) with the given training overrides; returns the run ids."""
        from worker import api
        self.n_matrices += 1
        base = yaml.safe_load(yaml.safe_dump(BASE))
        base["train"].update(train)
        result = api.submit_matrix({"name": name or f"exp{self.n_matrices}", "base": base,
                                    "factors": {"seed": list(range(n))}})
        return result["queued"]

    def runs(self, ids: list[int]) -> dict[int, dict]:
        from worker import api
        return {r["id"]: r for r in api.list_runs(run_ids=ids)}

    def wait(self, ids: list[int], status: str | tuple, timeout: float = 180, *, until=None) -> dict[int, dict]:
        """Poll until every run has `status` (or `until(run)` holds for all); fail with the logs."""
        wanted = (status,) if isinstance(status, str) else status
        deadline = time.monotonic() + timeout
        while True:
            runs = self.runs(ids)
            if all((until(r) if until else r["status"] in wanted) for r in runs.values()) and len(runs) == len(ids):
                return runs
            if time.monotonic() > deadline:
                states = {i: (r["status"], r["step"], r["attempt"]) for i, r in runs.items()}
                raise AssertionError(f"timed out waiting for {wanted}: {states}\n--- logs ---\n{self.logs()[-6000:]}")
            time.sleep(0.3)


class FakeTeacherServer:
    """An OpenAI-compatible /v1/completions server on 127.0.0.1 for teacher tests (real HTTP).
    `answer(body) -> (text, delay_s)` decides each reply; `asked` counts requests by `key(body)`."""

    def __init__(self, answer, key):
        import json
        import threading
        from collections import Counter
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        self.asked, self.lock = Counter(), threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.asked[key(body)] += 1
                text, delay = answer(body)
                time.sleep(delay)
                payload = json.dumps({"choices": [{"text": text}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()


def wait_job(job_id: int, until, *, timeout: float = 240, logs=lambda: "") -> dict:
    """Poll a job until `until(job)` holds; fail with its state and the workers' logs."""
    import time
    from worker import api
    deadline = time.monotonic() + timeout
    while True:
        job = api.job_detail(job_id)
        if until(job):
            return job
        assert time.monotonic() < deadline, f"job {job_id}: {job['status']} {job['error']}\n{logs()[-4000:]}"
        time.sleep(0.2)
