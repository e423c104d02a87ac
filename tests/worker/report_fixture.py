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


def seed_experiment(url: str, name: str = "report-demo", arms: list | None = None, seeds: list[int] = SEEDS) -> dict:
    """Writes the experiment (`arms`: (placement, kind, params) as ARMS, where params may hold
    `level` and data keys such as `n_train`); returns {run ids by (arm index, seed), example ids,
    collapsed run}."""
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
        experiment = Experiment(name=name, factors={"arm": [f"{p}/{k}" for p, k, _ in arms or ARMS], "seed": seeds},
                                base={"data": DATA, "train": {"steps": 20}}, cells=[])
        s.add(experiment)
        s.flush()
        for a, (placement, kind, params) in enumerate(arms or ARMS):
            for seed in seeds:
                pert = {"kind": kind, "level": params.get("level", "token"),
                        "params": {k: v for k, v in params.items() if k not in ("level", "n_train")}}
                data_ = {**DATA, **{k: v for k, v in params.items() if k == "n_train"}}
                cfg = from_dict(RunConfig, {"data": data_, "placement": placement, "seed": seed, "perturbation": pert})
                correct = [rng.random() < P_CORRECT[a % len(P_CORRECT)] for _ in items]
                acc = sum(correct) / len(items)
                collapsed = (a, seed) == (4, 2)
                generated = placement == "before"              # eval.mode auto: `before` generates
                summary = {"accuracy": acc, "n": len(items), "scoring": None if generated else "letter",
                           "eval_mode": "generate" if generated else "score",
                           "results_version": 3, "data_hash": "d" * 12, "precision": "fp32", "device": "cpu",
                           "collapsed": collapsed,
                           "collapse_reason": "not distinguishable from a constant answer: answers 'a' on 29 of "
                                              "30 items" if collapsed else None}
                if not generated:
                    summary["accuracy_by_mode"] = {"letter": acc}
                if seed != 1:                      # seed 1's runs were made before environments were recorded
                    summary["environment"] = {"threads": 2, "torch": "2.13.0", "transformers": "5.1.0",
                                              "python": "3.11.9", "device": "cpu"}
                run = Run(experiment_id=experiment.id, config=cfg.to_dict(), config_hash=cfg.hash("cpu"),
                          status="succeeded", total_steps=20, step=20, accuracy=acc, summary=summary)
                s.add(run)
                s.flush()
                ids[(a, seed)] = run.id
                cells.append({"config_hash": run.config_hash, "factors": {"arm": a, "seed": seed}})
                s.execute(insert(Prediction), [
                    {"run_id": run.id, "example_id": ex, "correct": c, "generated": None,
                     "predicted": gold[ex] if c else "abcd"[("abcd".index(gold[ex]) + 1) % 4],
                     "scores": {"gold": gold[ex]} if generated else {"gold": gold[ex], "scoring": "letter"}}
                    for ex, c in zip(items, correct)])
                s.execute(insert(Metric), [{"run_id": run.id, "step": 5 * (k + 1), "name": name,
                                            "value": scale * (2.0 / (k + 1) + 0.01 * a)}
                                           for k in range(4) for name, scale in (("loss", 1.0), ("label_loss", 0.5))])
        experiment.cells = cells
        s.commit()
    return {"ids": ids, "items": items, "collapsed": ids.get((4, 2))}
