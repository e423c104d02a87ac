"""The jobs-API calls the Compare page needs, on a database the size of a real study.

    .venv/bin/python bench/db_scale.py [--database-url postgresql+psycopg://…]

Seeds one experiment of 200 succeeded runs (40 arms × 5 seeds) with 1,221 predictions each (the
CommonsenseQA test set: 244,200 rows) and a training curve each, into a fresh SQLite file (default),
then times each API call (best of 3). Baseline, measured in the same run: the same data read the
naive way, one ORM object per run and its rows lazily (what a page written without the API would do).
Goal: each call under 0.5 s on SQLite.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

N_ARMS, N_SEEDS, N_TEST, N_STEPS = 40, 5, 1221, 30
PERTURBATIONS = ["none", "shuffle", "mask", "filler", "truncate", "random_subset", "mismatch", "shuffle"]


def seed_database(url: str) -> tuple[int, list[int]]:
    from sqlalchemy import insert
    from cotdistill.config import RunConfig, from_dict
    from worker.db import make_engine, session_factory, upgrade
    from worker.models import Experiment, Metric, Prediction, Run
    upgrade(url)
    sessions = session_factory(make_engine(url))
    rng = random.Random(0)
    with sessions() as s:
        experiment = Experiment(name="scale", factors={"arm": N_ARMS, "seed": N_SEEDS}, cells=[])
        s.add(experiment)
        s.flush()
        run_ids, cells = [], []
        for arm in range(N_ARMS):
            placement = ("none", "before", "after", "after", "after")[arm % 5]
            kind = PERTURBATIONS[arm % len(PERTURBATIONS)] if placement != "none" else "none"
            p_correct = 0.4 + 0.01 * arm
            for seed in range(N_SEEDS):
                cfg = from_dict(RunConfig, {"data": {"name": "commonsenseqa-dsbs", "n_train": 100 + arm},
                                            "placement": placement, "perturbation": {"kind": kind},
                                            "seed": seed})
                correct = [rng.random() < p_correct for _ in range(N_TEST)]
                acc = sum(correct) / N_TEST
                run = Run(experiment_id=experiment.id, config=cfg.to_dict(), config_hash=cfg.hash(),
                          status="succeeded", total_steps=N_STEPS * 10, step=N_STEPS * 10, accuracy=acc,
                          summary={"accuracy": acc, "n": N_TEST})
                s.add(run)
                s.flush()
                run_ids.append(run.id)
                cells.append({"config_hash": cfg.hash(), "factors": {"arm": arm, "seed": seed}})
                s.execute(insert(Prediction), [
                    {"run_id": run.id, "example_id": f"cqa-{i}", "predicted": "abcde"[rng.randrange(5)],
                     "correct": c, "generated": None,
                     "scores": {"gold": "a", "scores": {x: -rng.random() * 5 for x in "abcde"}}}
                    for i, c in enumerate(correct)])
                s.execute(insert(Metric), [{"run_id": run.id, "step": 10 * (k + 1), "name": name, "value": v}
                                           for k in range(N_STEPS)
                                           for name, v in (("loss", 3.0 / (k + 1)), ("lr", 1e-3), ("tokens_per_s", 9e3))])
        experiment.cells = cells
        s.commit()
    return experiment.id, run_ids


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def naive_predictions(run_ids: list[int]) -> int:
    """Baseline: ORM objects, one query per run for its predictions."""
    from sqlalchemy import select
    from worker.db import make_engine, session_factory
    from worker.models import Prediction, Run
    with session_factory(make_engine())() as s:
        n = 0
        for run in s.scalars(select(Run).where(Run.id.in_(run_ids))).all():
            n += len(s.scalars(select(Prediction).where(Prediction.run_id == run.id)).all())
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="cotdistill-dbscale-"))
    url = args.database_url or f"sqlite:///{home / 'scale.db'}"
    os.environ.update({"COTDISTILL_HOME": str(home), "COTDISTILL_DATABASE_URL": url})
    t0 = time.perf_counter()
    experiment_id, run_ids = seed_database(url)
    print(f"seeded {len(run_ids)} runs x {N_TEST} predictions in {time.perf_counter() - t0:.1f} s ({url.split(':')[0]})")

    from worker import api
    arm_a, arm_b = run_ids[2 * N_SEEDS:3 * N_SEEDS], run_ids[:N_SEEDS]
    calls = {
        "list_experiments()": lambda: api.list_experiments(),
        "list_runs(experiment)": lambda: api.list_runs(experiment=experiment_id),
        "compare(200 runs)": lambda: api.compare(run_ids),
        "curves(200 runs, loss)": lambda: api.curves(run_ids, "loss"),
        "predictions(2 runs)": lambda: api.predictions(run_ids[:2]),
        "predictions(5 seeds of an arm)": lambda: api.predictions(arm_a),
        f"paired({N_SEEDS} vs {N_SEEDS} seeds)": lambda: api.paired(arm_a, arm_b),
        "run_detail(run)": lambda: api.run_detail(run_ids[-1]),
    }
    api.list_experiments()                                   # migrate and connect outside the timings
    baseline = best_of(lambda: naive_predictions(arm_a))
    print(f"\n{'jobs-API call':<34} {'seconds':>8} {'/ 0.5 s goal':>13}")
    worst = 0.0
    for name, fn in calls.items():
        t = best_of(fn)
        worst = max(worst, t)
        print(f"{name:<34} {t:>8.3f} {t / 0.5:>12.2f}x")
    t_api = best_of(lambda: api.predictions(arm_a))
    print(f"\nbaseline: predictions of 5 runs as ORM objects, one query per run: {baseline:.3f} s; "
          f"the API's single query: {t_api:.3f} s ({baseline / t_api:.1f}x faster)")
    print(f"goal: every call < 0.5 s: {'met' if worst < 0.5 else 'NOT met'} (slowest {worst:.3f} s)")


if __name__ == "__main__":
    main()
