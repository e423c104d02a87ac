"""The first experiment a new user launches: wall time of the Launch page's default matrix on the
embedded stack, from Launch to the last result, and the paired differences Compare then shows.

    .venv/bin/python bench/first_run.py [--workers N]

Starts `cotdistill up --no-app` (default worker count) in a fresh state folder, submits the matrix
the Launch page proposes untouched (cotdistill.studies.testbed.FIRST_RUN: label-only, rationale after the label,
filler after the label; 3 seeds), waits for every run, then prints each arm against label-only as
the Compare page judges it: the procedure (paired t over the seed pairs, `verdict`), with the test
set's item-level interval and p beside it, and how many runs are flagged as constant answerers.
Baselines in the same run: the sum of the runs' own durations (what one worker running them back to
back would take, without the queue) and the CPU time the stack used (user + system of every process
it started): on a machine shared with other work the wall time is inflated, the CPU time much less.
Goal: the matrix finishes in at most 5 minutes on an idle 2-core machine, with `after` significantly
above label-only by the procedure-level test, `after · filler` not, and at most one flagged run.
`--name` runs another testbed matrix instead (one of cotdistill.studies.testbed.PRESETS).
"""

from __future__ import annotations

import argparse
import os
import resource
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
    parser.add_argument("--preset", default=None, help="a key of cotdistill.studies.testbed.PRESETS instead of the default")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="cotdistill-first-run-"))
    os.environ.update(COTDISTILL_HOME=str(home), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    os.environ.pop("COTDISTILL_DATABASE_URL", None)
    os.environ.pop("COTDISTILL_BROKER_URL", None)
    from cotdistill.studies.testbed import first_run_matrix, preset_matrix
    from worker import api
    cmd = [sys.executable, "-m", "worker.cli", "up", "--no-app"]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    stack = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL)
    try:
        time.sleep(3)                                   # the stack migrates the database first
        t0 = time.time()
        submitted = api.submit_matrix(preset_matrix(args.preset, "first-run") if args.preset
                                      else first_run_matrix("first-run"))
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
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = usage.ru_utime + usage.ru_stime
    arms: dict[str, list[int]] = {}
    for r in runs:
        arms.setdefault(r["arm"], []).append(r["id"])
    base = next(a for a in arms if a.startswith("none"))
    flagged = [r["id"] for r in runs if (r.get("summary") or {}).get("collapsed")]
    print(f"{n} runs ({args.preset or 'default matrix'}, {os.cpu_count()} CPU cores)")
    print(f"{'arm':<22} {'accuracy (mean of seeds)':>25} {'procedure: vs label-only [95% CI]':>36} {'p':>9}  "
          f"{'verdict':<16} {'test set [95% CI]':>18} {'p':>9}")
    for arm, ids in arms.items():
        accs = [r["accuracy"] for r in runs if r["id"] in ids]
        line = f"{arm:<22} {sum(accs) / len(accs):>25.3f}"
        if arm != base:
            p = api.paired(ids, arms[base])
            ci = "" if p["low"] is None else f" [{p['low']:+.3f}, {p['high']:+.3f}]"
            t = p["test_set"]
            line += (f" {p['diff']:+.3f}{ci}".rjust(37) + f" {p['p_value'] if p['p_value'] is None else format(p['p_value'], '.2g'):>9}  "
                     f"{p['verdict'] + (' (+)' if p['diff'] > 0 else ' (-)'):<16}"
                     f" [{t['low']:+.3f}, {t['high']:+.3f}]".rjust(19) + f" {t['p_value']:>9.2g}")
        print(line)
    print(f"runs flagged as constant answers: {len(flagged)} of {len(runs)}" + (f" (#{', #'.join(map(str, flagged))})" if flagged else ""))
    print(f"\nwall time, Launch to last result: {wall:.0f} s ({wall / GOAL_S:.2f}x the 5-minute goal: "
          f"{'met' if wall <= GOAL_S else 'NOT met'})")
    print(f"baseline, the runs' own durations back to back: {own:.0f} s ({own / wall:.2f}x the wall time)")
    print(f"CPU time of the stack (user + system, every process): {cpu:.0f} s ({cpu / GOAL_S:.2f}x the 5-minute "
          f"goal; {cpu / max(1, os.cpu_count() or 1):.0f} s spread over {os.cpu_count()} cores, "
          f"{cpu / max(1, os.cpu_count() or 1) / GOAL_S:.2f}x the goal): the wall time an idle machine would need "
          f"at the least; the load average at the end was {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
