"""The first experiment a new user launches: wall time of the Launch page's default matrix on the
embedded stack, from Launch to the last result, and the paired differences Compare then shows.

    .venv/bin/python bench/first_run.py [--workers N]

Starts `cotdistill up --no-app` (default worker count) in a fresh state folder, submits the matrix
the Launch page proposes untouched (cotdistill.testbed.FIRST_RUN: label-only, rationale after the label,
filler after the label; 3 seeds), waits for every run, then prints each arm against label-only with
the across-seeds paired statistics of the Compare page. Baseline in the same run: the sum of the
runs' own durations (what one worker running them back to back would take, without the queue).
Goal: the matrix finishes in at most 5 minutes on 2 CPU cores, with `after` significantly above
label-only and `after · filler` not.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
GOAL_S = 300.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=None, help="training workers (default: as `up`)")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="cotdistill-first-run-"))
    os.environ.update(COTDISTILL_HOME=str(home), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    os.environ.pop("COTDISTILL_DATABASE_URL", None)
    os.environ.pop("COTDISTILL_BROKER_URL", None)
    from cotdistill.testbed import first_run_matrix
    from worker import api
    cmd = [sys.executable, "-m", "worker.cli", "up", "--no-app"]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    stack = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL)
    try:
        time.sleep(3)                                   # the stack migrates the database first
        t0 = time.time()
        submitted = api.submit_matrix(first_run_matrix("first-run"))
        n = len(submitted["queued"])
        while True:
            runs = api.list_runs(experiment="first-run")
            if all(r["status"] == "succeeded" for r in runs):
                break
            bad = [r for r in runs if r["status"] in ("failed", "cancelled")]
            if bad:
                print(f"run #{bad[0]['id']} {bad[0]['status']}: {api.run_detail(bad[0]['id']).get('error')}")
                return 1
            if time.time() - t0 > args.timeout:
                print(f"timed out after {args.timeout:.0f} s: {[(r['id'], r['status'], r['step']) for r in runs]}")
                return 1
            time.sleep(1)
        last = max(datetime.fromisoformat(r["finished_at"]).timestamp() for r in runs)
        wall = last - t0
        own = sum(datetime.fromisoformat(r["finished_at"]).timestamp()
                  - datetime.fromisoformat(r["started_at"]).timestamp() for r in runs)
    finally:
        os.killpg(stack.pid, signal.SIGTERM)
        stack.wait(60)
    arms: dict[str, list[int]] = {}
    for r in runs:
        arms.setdefault(r["arm"], []).append(r["id"])
    base = next(a for a in arms if a.startswith("none"))
    print(f"{n} runs (default matrix, {os.cpu_count()} CPU cores)")
    print(f"{'arm':<22} {'accuracy (mean of seeds)':>25} {'vs label-only [95% CI]':>28} {'p':>10}  significant")
    for arm, ids in arms.items():
        accs = [r["accuracy"] for r in runs if r["id"] in ids]
        line = f"{arm:<22} {sum(accs) / len(accs):>25.3f}"
        if arm != base:
            p = api.paired(ids, arms[base])
            line += (f" {p['diff']:+.3f} [{p['low']:+.3f}, {p['high']:+.3f}]".rjust(29)
                     + f" {p['p_value']:>10.2g}  {'yes' if p['p_value'] < 0.05 and p['diff'] > 0 else 'no'}")
        print(line)
    print(f"\nwall time, Launch to last result: {wall:.0f} s ({wall / GOAL_S:.2f}x the 5-minute goal: "
          f"{'met' if wall <= GOAL_S else 'NOT met'})")
    print(f"baseline, the runs' own durations back to back: {own:.0f} s ({own / wall:.2f}x the wall time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
