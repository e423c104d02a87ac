"""Enqueue → `running` latency of the job system, per broker, over N no-op runs.

    .venv/bin/python bench/queue_latency.py [--n 50]

For each broker (the embedded file broker, kombu's SQLAlchemy transport on a SQLite file, and Redis
when one answers at 127.0.0.1:6379) a real worker subprocess is started; then, one run at a time, a
queued run is created, its message sent, and the time until the worker's claim (the run's
`started_at`) is measured. The no-op task claims the run and completes it at once, so this is the
queue itself: broker round trip, polling, task dispatch and the claim's database write.
Goal: embedded median under 0.2 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def redis_up() -> bool:
    try:
        import redis
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=1).ping())
    except Exception:
        return False


def measure(name: str, broker_url: str | None, n: int, poll: float = 0.05) -> list[float]:
    home = Path(tempfile.mkdtemp(prefix=f"cotdistill-bench-{name}-"))
    env = {"COTDISTILL_HOME": str(home), "COTDISTILL_DATABASE_URL": f"sqlite:///{home / 'bench.db'}",
           "COTDISTILL_BROKER_POLL": str(poll), "COTDISTILL_RECONCILE_EVERY": "3600"}
    if broker_url:
        env["COTDISTILL_BROKER_URL"] = broker_url
    else:
        os.environ.pop("COTDISTILL_BROKER_URL", None)
    os.environ.update(env)
    from worker.celery_app import GPU_QUEUE, get_app
    from worker.db import make_engine, session_factory, upgrade
    from worker.models import Run
    upgrade()
    sessions = session_factory(make_engine())
    log = open(home / "worker.log", "wb")
    worker = subprocess.Popen([sys.executable, "-m", "worker.cli", "worker", "--queues", "gpu,cpu"],
                              cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    app = get_app()
    latencies = []
    try:
        for i in range(n + 3):                                     # 3 warm-up runs, not counted
            with sessions() as s:
                run = Run(config={}, config_hash=f"noop{i}", status="queued")
                s.add(run)
                s.commit()
                run_id = run.id
            t0 = time.time()
            app.send_task("cotdistill.noop", args=[run_id], queue=GPU_QUEUE)
            started = None
            deadline = time.monotonic() + 60
            while started is None:
                with sessions() as s:
                    started = s.get(Run, run_id).started_at
                if started is None:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{name}: run {run_id} never started; see {home / 'worker.log'}")
                    time.sleep(0.005)
            if i >= 3:
                latencies.append(started.timestamp() - t0)
    finally:
        worker.terminate()
        worker.wait(30)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    args = parser.parse_args()
    brokers = [("embedded (filesystem)", None, 0.05), ("sqlalchemy transport (SQLite)", "sqla+sqlite:///{home}", 0.05),
               ("sqlalchemy, default 1 s polling", "sqla+sqlite:///{home}", 1.0)]
    if redis_up():
        brokers.append(("redis", "redis://127.0.0.1:6379/5", 0.05))
    else:
        print("redis: not reachable at 127.0.0.1:6379, skipped")
    results = {}
    for name, url, poll in brokers:
        if url and "{home}" in url:
            url = url.format(home=Path(tempfile.mkdtemp(prefix="cotdistill-sqla-")) / "broker.db")
        lat = sorted(measure(name.split()[0].strip(","), url, args.n, poll))
        results[name] = (statistics.median(lat), lat[int(0.95 * (len(lat) - 1))])
    base = results["embedded (filesystem)"][0]
    print(f"\nenqueue -> running over {args.n} no-op runs (1 worker, SQLite database; polling 0.05 s unless noted)")
    print(f"{'broker':<32} {'median s':>9} {'p95 s':>8} {'median / embedded':>18}")
    for name, (median, p95) in results.items():
        print(f"{name:<32} {median:>9.3f} {p95:>8.3f} {median / base:>17.2f}x")
    print(f"goal: embedded median < 0.2 s: {'met' if base < 0.2 else 'NOT met'}")


if __name__ == "__main__":
    main()
