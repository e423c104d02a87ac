"""One worker per GPU, and runs that take several: placement on a multi-GPU host.

    cotdistill worker --gpus 0,1,2,3        # supervise(): four workers, CUDA_VISIBLE_DEVICES pinned
    cotdistill worker --gpus all            # every GPU torch sees

Each child worker is an ordinary `cotdistill worker` whose environment names its GPU
(COTDISTILL_GPU, CUDA_VISIBLE_DEVICES) and the host's pool (COTDISTILL_GPU_POOL). The GPUs of the
host are lock files (flock, in COTDISTILL_GPU_LOCKS): a worker holds its own GPU's lock while it runs
a run, and a run with `train.devices: N` also takes N-1 free GPUs of the pool for as long as it
trains, then gives them back. A worker whose GPU is lent waits for it before it claims a run.
The kernel drops a lock when its process dies, so a killed worker never leaves a GPU taken.
Claims and recovery stay the database's (worker/state.py, worker/reconcile.py).

On a machine without GPUs the same flags work with any list (`--gpus 0,1`): the ids are only
names, the runs train on CPU, and a 2-device run is two gloo processes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from cotdistill.train.distributed import die_with_parent
from cotdistill.paths import home

log = logging.getLogger(__name__)
WAIT_S = 0.5


def parse_gpus(spec: str) -> list[str]:
    """'0,1' -> ['0', '1']; 'all' -> every CUDA device torch sees (an error on a machine with none)."""
    if spec.strip() == "all":
        import torch
        n = torch.cuda.device_count()
        if n == 0:
            raise ValueError("--gpus all: no CUDA device is visible; on a machine without GPUs give a "
                             "list (--gpus 0,1) to run one worker per listed id on CPU")
        return [str(i) for i in range(n)]
    ids = [part.strip() for part in spec.split(",")]
    if not all(i.isdigit() for i in ids) or len(set(ids)) != len(ids):
        raise ValueError(f"--gpus {spec!r}: expected `all` or distinct GPU indices separated by commas "
                         f"(e.g. 0,1,2,3)")
    return ids


def locks_dir() -> Path:
    return Path(os.environ.get("COTDISTILL_GPU_LOCKS") or home() / "gpu-locks" / socket.gethostname())


def worker_env(gpu: str, pool: list[str], name: str, base: dict | None = None) -> dict:
    """The environment of the worker pinned to `gpu`."""
    return {**(os.environ if base is None else base), "CUDA_VISIBLE_DEVICES": gpu, "COTDISTILL_GPU": gpu,
            "COTDISTILL_GPU_POOL": ",".join(pool), "COTDISTILL_GPU_LOCKS": str(locks_dir()),
            "COTDISTILL_WORKER_NAME": f"{name}-gpu{gpu}"}


# --- the supervisor -----------------------------------------------------------------------------
def supervise(gpus: list[str], worker_argv: list[str], name: str, restart_after: float = 5.0) -> None:
    """Start one worker per GPU and keep them running until SIGTERM / Ctrl-C, which is passed on (each
    worker hands its running run back with its checkpoint)."""
    locks_dir().mkdir(parents=True, exist_ok=True)
    stopping = []

    def start(gpu: str) -> subprocess.Popen:
        argv = [sys.executable, "-m", "worker.cli", "worker", *worker_argv, "--name", f"{name}-gpu{gpu}"]
        return subprocess.Popen(argv, env=worker_env(gpu, gpus, name), start_new_session=True,
                                preexec_fn=lambda: die_with_parent(signal.SIGTERM))   # hands its run back

    def on_signal(signum, _frame) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    children = {gpu: start(gpu) for gpu in gpus}
    log.info("workers for GPUs %s: pids %s", ",".join(gpus), [p.pid for p in children.values()])
    while not stopping:
        time.sleep(0.5)
        for gpu, proc in list(children.items()):
            if proc.poll() is not None and not stopping:
                log.warning("worker of GPU %s exited (%s); restarting it in %.0f s", gpu, proc.returncode,
                            restart_after)
                time.sleep(restart_after)
                children[gpu] = start(gpu)
    for proc in children.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in children.values():
        proc.wait()


# --- inside a pinned worker ---------------------------------------------------------------------
class GpuLocks:
    """The GPUs this worker holds: its own (while it runs something) and any it borrowed."""

    def __init__(self):
        self.own = os.environ.get("COTDISTILL_GPU")
        self.pool = [g for g in os.environ.get("COTDISTILL_GPU_POOL", "").split(",") if g]
        self.held: dict[str, object] = {}

    def _try(self, gpu: str) -> bool:
        folder = locks_dir()
        folder.mkdir(parents=True, exist_ok=True)
        f = open(folder / f"gpu{gpu}.lock", "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.close()
            return False
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self.held[gpu] = f
        return True

    def take_own(self) -> None:
        """Wait until this worker's GPU is not lent to a sibling's multi-device run."""
        if self.own is None:
            return
        waited = False
        while not self._try(self.own):
            if not waited:
                log.info("GPU %s is lent to another worker's run; waiting for it", self.own)
                waited = True
            time.sleep(WAIT_S)

    def take(self, n: int, check: Callable[[], None]) -> list[str]:
        """This worker's GPU and n-1 free ones of the pool (waiting for them, calling `check()` between
        tries so that a cancel still stops the run); the list for CUDA_VISIBLE_DEVICES."""
        if self.own is None:
            return []
        from cotdistill.errors import RunError
        if n > len(self.pool):
            raise RunError(f"train.devices={n}, but this host's workers have {len(self.pool)} GPU(s) "
                           f"(--gpus {','.join(self.pool)}): lower train.devices or add GPUs")
        while len(self.held) < n:
            for gpu in self.pool:
                if gpu not in self.held and len(self.held) < n:
                    self._try(gpu)
            if len(self.held) < n:
                check()
                time.sleep(WAIT_S)
        return [self.own] + sorted((g for g in self.held if g != self.own), key=int)

    def release(self) -> None:
        for f in self.held.values():
            fcntl.flock(f, fcntl.LOCK_UN)
            f.close()
        self.held = {}


def run_multi(cfg, out: Path, reporter, locks: GpuLocks, checkpoint_every: int) -> dict:
    """A run with train.devices > 1 as a torchrun job on this worker's GPU and borrowed ones; rank 0's
    events feed the reporter (one progress stream), whose checks can stop it."""
    from cotdistill.train.distributed import check_supported, launch
    gpus = locks.take(cfg.train.devices, reporter.check)
    env = {"CUDA_VISIBLE_DEVICES": ",".join(gpus)} if gpus else {}
    import torch
    check_supported(cfg.train, "cuda" if torch.cuda.is_available() else "cpu")
    summary = launch(cfg, out, callback=reporter, env=env, checkpoint_every=checkpoint_every,
                     poll=reporter.check)
    if not gpus:
        return summary
    # Into the folder too: an attempt that finds this folder finished (the worker died before recording
    # it) reuses summary.json, and the run must still say which GPUs it ran on.
    from cotdistill.run import write_json
    summary = {**summary, "gpus": gpus}
    reporter.check()
    write_json(out / "summary.json", summary)
    return summary
