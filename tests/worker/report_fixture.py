"""A constructed experiment for the report tests: runs, predictions and curves written directly
into a SQLite database (no training), on the built-in synthetic dataset's real test items."""

from __future__ import annotations

import random

# (placement, perturbation kind, params; `level` is perturbation.level)
ARMS = [("none", "none", {}), ("after", "none", {}), ("after", "shuffle", {"level": "word"}),
        ("after", "random_subset", {"k": 2}), ("after", "random_subset", {"k": 4})]
SEEDS = [0, 1, 2]
N_TEST = 30
P_CORRECT = {0: 0.35, 1: 0.8, 2: 0.7, 3: 0.45, 4: 0.55}
DATA = {"name": "synthetic", "n_train": 40, "n_test": N_TEST, "sample": "first"}


def seed_experiment(url: str, name: str = "report-demo") -> dict:
    """Writes the experiment; returns {run ids by (arm index, seed), example ids, collapsed run}."""
    from sqlalchemy import insert
    from cotdistill import data
    from cotdistill.config import RunConfig, from_dict
    from worker.db import make_engine, session_factory, upgrade
    from worker.models import Experiment, Metric, Prediction, Run
    upgrade(url)
    test = data.load_examples("synthetic", "test")[:N_TEST]
    items, gold = [ex.id for ex in test], {ex.id: ex.label for ex in test}
    rng = random.Random(7)
    ids, cells = {}, []
    with session_factory(make_engine(url))() as s:
        experiment = Experiment(name=name, factors={"arm": [f"{p}/{k}" for p, k, _ in ARMS], "seed": SEEDS},
                                base={"data": DATA, "train": {"steps": 20}}, cells=[])
        s.add(experiment)
        s.flush()
        for a, (placement, kind, params) in enumerate(ARMS):
            for seed in SEEDS:
                pert = {"kind": kind, "level": params.get("level", "token"),
                        "params": {k: v for k, v in params.items() if k != "level"}}
                cfg = from_dict(RunConfig, {"data": DATA, "placement": placement, "seed": seed, "perturbation": pert})
                correct = [rng.random() < P_CORRECT[a] for _ in items]
                acc = sum(correct) / len(items)
                collapsed = (a, seed) == (4, 2)
                summary = {"accuracy": acc, "n": len(items), "scoring": "letter", "results_version": 3,
                           "data_hash": "d" * 12, "precision": "fp32", "device": "cpu", "collapsed": collapsed,
                           "collapse_reason": "answers 'a' on 29 of 30 items" if collapsed else None}
                run = Run(experiment_id=experiment.id, config=cfg.to_dict(), config_hash=cfg.hash("cpu"),
                          status="succeeded", total_steps=20, step=20, accuracy=acc, summary=summary)
                s.add(run)
                s.flush()
                ids[(a, seed)] = run.id
                cells.append({"config_hash": run.config_hash, "factors": {"arm": a, "seed": seed}})
                s.execute(insert(Prediction), [
                    {"run_id": run.id, "example_id": ex, "correct": c, "generated": None,
                     "predicted": gold[ex] if c else "abcd"[("abcd".index(gold[ex]) + 1) % 4],
                     "scores": {"gold": gold[ex], "scoring": "letter"}}
                    for ex, c in zip(items, correct)])
                s.execute(insert(Metric), [{"run_id": run.id, "step": 5 * (k + 1), "name": "loss",
                                            "value": 2.0 / (k + 1) + 0.01 * a} for k in range(4)])
        experiment.cells = cells
        s.commit()
    return {"ids": ids, "items": items, "collapsed": ids.get((4, 2))}
