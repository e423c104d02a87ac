"""`cotdistill up`: the embedded stack in one command.

Migrates the database, starts the training worker(s) (queue `gpu`, one run at a time each), a light
worker (queue `cpu`: previews, reconciling, calibrations timed with a training worker's CPU threads) and, when the app exists, the Streamlit app bound to
127.0.0.1. Each child runs in its own process group, so Ctrl-C reaches only this process, which then
stops them: workers hand their running run back to the queue at its next training step (it resumes
from its last checkpoint on the next `up`), the app stops, and anything that has not exited after a
grace period is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click

APP = Path(__file__).resolve().parent.parent / "app" / "main.py"
GRACE_S = 15.0
# Also in .streamlit/config.toml, which Streamlit reads only when started from the checkout: as flags
# they hold from any working directory. `minimal` hides the Deploy button and the developer menu.
APP_FLAGS = ["--server.headless", "true", "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal"]
MIN_PASSWORD = 8                  # as app/auth.py, which the worker does not import


def default_workers() -> int:
    """One training worker per GPU; on a CPU-only machine two (runs of small students use one core
    well, so two one-thread workers finish a matrix sooner than one worker with two threads)."""
    try:
        import torch
        if torch.cuda.is_available():
            return torch.cuda.device_count()
    except ImportError:
        pass
    return max(1, min(2, os.cpu_count() or 1))


def worker_env(workers: int) -> dict[str, str]:
    """Environment of a training worker: on CPUs, the cores shared out between the workers."""
    env = dict(os.environ)
    if "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // max(1, workers)))
    return env


class Stack:
    def __init__(self, *, workers: int | None = None, port: int = 8501, host: str = "127.0.0.1", app: bool = True):
        self.workers, self.port, self.host = workers or default_workers(), port, host
        self.app = app and APP.exists()
        self.children: list[tuple[str, subprocess.Popen]] = []

    def commands(self) -> list[tuple[str, list[str]]]:
        me = [sys.executable, "-m", "worker.cli"]
        cmds = [(f"worker-gpu-{i}", me + ["worker", "--queues", "gpu", "--name", f"gpu{i}"])
                for i in range(self.workers)]
        cmds.append(("worker-cpu", me + ["worker", "--queues", "cpu", "--name", "cpu"]))
        if self.app:
            cmds.append(("app", [sys.executable, "-m", "streamlit", "run", str(APP),
                                 "--server.address", self.host, "--server.port", str(self.port), *APP_FLAGS]))
        return cmds

    def check(self) -> None:
        if self.host in ("127.0.0.1", "localhost", "::1"):
            return
        password = os.environ.get("COTDISTILL_PASSWORD")
        if not password:
            raise click.ClickException(f"binding the app to {self.host} exposes it to the network: "
                                       f"set COTDISTILL_PASSWORD first (or use --host 127.0.0.1)")
        if len("".join(password.split())) < MIN_PASSWORD:
            raise click.ClickException(f"COTDISTILL_PASSWORD has fewer than {MIN_PASSWORD} non-space "
                                       f"characters: set a longer one to bind the app to {self.host}")

    def start(self) -> None:
        from worker.db import database_url, upgrade
        from worker.celery_app import broker_url
        self.check()
        upgrade(database_url())
        for name, cmd in self.commands():
            env = worker_env(self.workers) if name.startswith("worker-gpu") else None
            if name == "worker-cpu":             # its calibrations time runs as a training worker runs them
                env = {**os.environ, "COTDISTILL_RUN_THREADS": worker_env(self.workers)["OMP_NUM_THREADS"]}
            self.children.append((name, subprocess.Popen(cmd, start_new_session=True, env=env)))
        click.echo(f"cotdistill up: database {database_url()}, broker {broker_url()}, "
                   f"{self.workers} training worker(s)")
        if self.app:
            click.echo(f"app: http://{self.host}:{self.port}")

    def stop(self) -> None:
        # SIGTERM: a worker's warm shutdown hands its running run back at the next training step.
        for name, proc in self.children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_S
        for name, proc in self.children:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        click.echo("cotdistill up: stopped")

    def run(self) -> None:
        self.start()
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
        try:
            while not stopping:
                for name, proc in self.children:
                    if proc.poll() is not None:
                        click.echo(f"cotdistill up: {name} exited with {proc.returncode}; stopping", err=True)
                        stopping.append(1)
                        break
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
