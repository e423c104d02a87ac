"""Runs and experiments: submit, cancel, retry, list, curves, predictions, compare, paired."""

from __future__ import annotations

import copy
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cotdistill.stats import inference as stats
from cotdistill.stats.arms import PANEL_KEYS, arm_key, arm_labels, eval_protocol, is_untouched
from cotdistill.evaluate.diagnostics import paired_basis
from worker import state
from worker.api.core import NotFound, iso as _iso, session
from worker.models import Experiment, Metric, Prediction, Run, RunEvent


# ------------------------------------------------------------------------------------------ actions

def submit_matrix(matrix: str | Path | dict, *, force: bool = False, confirm: bool = False,
                  new_version: bool = False, reuse_old: bool = False) -> dict:
    """Expand and submit an experiment matrix (a file, or a dict with name/base/factors); sends the
    queued runs to the broker. Raises ConfigError for a bad matrix, NeedsConfirmation (a ConfigError)
    for one above experiments.CONFIRM_ABOVE cells without `confirm`; see experiments.submit."""
    from worker.experiments import load_matrix, matrix_of, submit
    from worker.reconcile import send
    m = matrix_of(matrix) if isinstance(matrix, dict) else load_matrix(matrix)
    _check_matrix_paths(m)
    with session() as s:
        result = submit(s, m, force=force, confirm=confirm, new_version=new_version, reuse_old=reuse_old)
        sent = send(s, result.queued)
    return {"experiment_id": result.experiment_id, "name": result.name, "queued": result.queued,
            "reused": result.reused, "kept": result.kept, "shared": result.shared,
            "duplicates": result.duplicates, "outdated": result.outdated, "sent": sent}


def _check_matrix_paths(m) -> None:
    """Every path any cell would read lies inside the allowed roots (worker/guard.py)."""
    from worker.experiments import expand
    from worker.guard import check_config_paths
    for _, cfg in expand(m):
        check_config_paths(cfg.to_dict())


def cancel(run_id: int) -> str:
    """Cancel a run: a queued one at once, a running one at its next step. Returns its status."""
    with session() as s:
        status = state.request_cancel(s, run_id)
    if status is None:
        raise NotFound(f"no run {run_id}")
    return status


def retry(run_id: int) -> dict:
    """Queue a failed or cancelled run again (attempt + 1); it resumes from its last checkpoint."""
    from worker.reconcile import send
    with session() as s:
        run = s.get(Run, run_id)
        if run is None:
            raise NotFound(f"no run {run_id}")
        if not state.requeue(s, run_id, from_status=("failed", "cancelled"), new_attempt=True):
            s.refresh(run)
            return {"run_id": run_id, "status": run.status, "queued": False,
                    "reason": f"run {run_id} is {run.status}; only failed or cancelled runs can be retried"}
        send(s, [run_id])
    return {"run_id": run_id, "status": "queued", "queued": True}


def requeue_failed(experiment: str | int) -> list[int]:
    """Retry every failed or cancelled cell of an experiment; returns the re-queued run ids."""
    ids = [r["id"] for r in list_runs(experiment=experiment) if r["status"] in ("failed", "cancelled")]
    return [i for i in ids if retry(i)["queued"]]


def preview(config: dict, conditions: list[dict], *, n: int = 1, split: str = "train",
            timeout: float = 120) -> list[dict]:
    """The exact training sequence of the first n examples under each condition
    ({placement, perturbation: {kind, params}, label?}): one row per (condition, example) with tokens,
    weights (0 = not supervised), spans, truncated. Computed by a worker on the `cpu` queue (it needs
    the student's tokenizer); raises TimeoutError when no cpu worker answers."""
    from worker.api.core import ask_cpu_worker
    from worker.guard import check_config_paths
    check_config_paths(config)
    for cond in conditions:
        check_config_paths({"perturbation": cond.get("perturbation") or {}})
    return ask_cpu_worker("cotdistill.preview", [config, conditions, n, split], timeout=timeout, what="preview")


def list_datasets() -> list[dict]:
    """Every registered dataset: name, kind, description, split sizes, rationale counts, error."""
    import dataclasses as dc
    from cotdistill import data
    return [dc.asdict(info) for info in data.available()]


def dataset_examples(name: str, split: str, *, options: dict | None = None, search: str | None = None,
                     limit: int = 200) -> list[dict]:
    """Examples of one split as plain dicts (question, choices, label, rationale, teacher label),
    filtered by a case-insensitive search over question and rationale."""
    import dataclasses as dc
    from cotdistill import data
    from worker.guard import check_paths, dataset_paths
    check_paths(dataset_paths(name, options))
    out = []
    for ex in data.load_examples(name, split, **(options or {})):
        if search and search.lower() not in f"{ex.question}\n{ex.rationale or ''}".lower():
            continue
        out.append({**dc.asdict(ex), "teacher_correct": ex.teacher_correct})
        if len(out) >= limit:
            break
    return out


# ------------------------------------------------------------------------------------------ queries

def run_row(run: Run, factors: dict | None = None, experiment: str | None = None, label: str | None = None) -> dict:
    """A run as plain data. `arm` is its arm's label among the runs listed with it (`label`; default:
    the label of this config alone), `arm_key` its arm (the config without the seed), `row_key` its
    arm without dataset and student (cotdistill/stats/arms.py), `eval_mode` generate or score."""
    c = run.config
    return {"id": run.id, "experiment_id": run.experiment_id, "experiment": experiment,
            "status": run.status, "attempt": run.attempt, "step": run.step, "total_steps": run.total_steps,
            "progress": run.progress or {}, "worker": run.worker, "accuracy": run.accuracy,
            "heartbeat_at": _iso(run.heartbeat_at), "created_at": _iso(run.created_at),
            "started_at": _iso(run.started_at), "finished_at": _iso(run.finished_at),
            "enqueued_at": _iso(run.enqueued_at), "waiting": None,
            "cancel_requested": run.cancel_requested, "has_error": run.error is not None,
            "config_hash": run.config_hash, "dataset": c["data"]["name"], "student": c["student"]["name"],
            "placement": c["placement"], "perturbation": c["perturbation"]["kind"],
            "arm": label or next(iter(arm_labels([c]).values())), "arm_key": arm_key(c),
            "row_key": arm_key(c, PANEL_KEYS), "eval_mode": eval_protocol(c, run.summary),
            "untouched": is_untouched(c), "seed": c["seed"], "factors": factors or {},
            "summary": run.summary or {}, "perturbation_params": c["perturbation"].get("params") or {}}


def _experiment(s: Session, experiment: str | int) -> Experiment:
    if isinstance(experiment, int) or str(experiment).isdigit():
        found = s.get(Experiment, int(experiment))
    else:
        found = s.scalar(select(Experiment).where(Experiment.name == experiment))
    if found is None:
        raise NotFound(f"no experiment {experiment!r}")
    return found


def list_experiments() -> list[dict]:
    """Every experiment with its number of cells and runs by status."""
    with session() as s:
        experiments = s.scalars(select(Experiment).order_by(Experiment.id.desc())).all()
        out = []
        for e in experiments:
            counts: dict[str, int] = {}
            for run, _ in _cells(s, e):
                counts[run.status] = counts.get(run.status, 0) + 1
            out.append({"id": e.id, "name": e.name, "factors": e.factors, "base": e.base or {},
                        "created_at": _iso(e.created_at),
                        "cells": len(e.cells or []), "counts": counts})
    return out


def _cells(s: Session, e: Experiment) -> list[tuple[Run, dict]]:
    """The experiment's cells: its own latest run per config, else a succeeded run of the same
    config from another experiment (a reused cell); a run that several identical cells share is
    listed once, with the first cell's factors."""
    own: dict[str, Run] = {}
    for run in s.scalars(select(Run).where(Run.experiment_id == e.id).order_by(Run.id)).all():
        own[run.config_hash] = run
    cells = e.cells or [{"config_hash": h, "factors": {}} for h in own]
    missing = [c["config_hash"] for c in cells if c["config_hash"] not in own]
    reused: dict[str, Run] = {}
    if missing:
        for run in s.scalars(select(Run).where(Run.config_hash.in_(missing),   # reused or shared
                                               Run.status.in_(("succeeded", "queued", "running")))
                             .order_by(Run.id)).all():
            reused.setdefault(run.config_hash, run)
    found, seen = [], set()
    for cell in cells:
        run = own.get(cell["config_hash"]) or reused.get(cell["config_hash"])
        if run is not None and run.id not in seen:     # identical cells (duplicates) are one run
            seen.add(run.id)
            found.append((run, cell["factors"]))
    return found


def list_runs(experiment: str | int | None = None, run_ids: list[int] | None = None,
              status: str | None = None) -> list[dict]:
    """Runs (of one experiment's cells, of the given ids, or all), newest experiment first."""
    with session() as s:
        if experiment is not None:
            e = _experiment(s, experiment)
            pairs = [(run, factors, e.name) for run, factors in _cells(s, e)]
        else:
            query = select(Run, Experiment.name).join(Experiment, isouter=True).order_by(Run.id)
            if run_ids is not None:
                query = query.where(Run.id.in_(run_ids))
            pairs = [(run, None, name) for run, name in s.execute(query).all()]
        labels = arm_labels([run.config for run, _, _ in pairs])
        rows = [run_row(run, factors, name, labels[arm_key(run.config)]) for run, factors, name in pairs]
        if any(r["status"] == "queued" for r in rows):
            from worker.presence import queue_reasons
            reasons = queue_reasons(s)
            for r in rows:
                r["waiting"] = reasons.get(r["id"]) if r["status"] == "queued" else None
    return [r for r in rows if status is None or r["status"] == status]


MEASURED_RUNS = 500                 # the latest finished runs whose speed the estimate reads


def experiment_estimate(experiment: str | int | None = None) -> dict:
    """How long the experiment's unfinished runs still need (worker/estimate.py says how; None: every
    unfinished run), over the whole queue: running runs and the runs of other experiments queued ahead
    of its last one count. Measured from the latest finished runs of this system, else from a
    calibration of this machine (asked of a `cpu` worker when missing; `measuring` lists the runs
    waiting for one). Keys: remaining_s (None when unknown or no worker), work_s, runs_left, running,
    workers, measured_runs, unknown, measuring, calibrated, ahead, per_run_s, ends_s (run id → seconds
    until it ends: a running run's ETA with its evaluation, a queued run's end behind the queue)."""
    from worker import estimate
    with session() as s:
        queue = _queue(s)
        if experiment is None:
            mine = {run.id for run in queue}
        else:
            e = _experiment(s, experiment)
            mine = {run.id for run, _ in _cells(s, e) if run.status in ("queued", "running")}
        measured = _measured(s)
        pending = [estimate.pending(run.id, arm_key(run.config), run.config, run.status, run.step, run.progress,
                                    experiment_id=run.experiment_id) for run in queue]
        measuring = _calibrate(pending, [run.config for run in queue], measured)
        workers = _run_capacity(s)
    found = estimate.estimate(pending, measured, workers=workers, mine=mine)
    return {**found, "measuring": sorted({p["label"] for p in pending if p["id"] in measuring
                                          and p["label"] in found["unknown"]})}


def _queue(s: Session) -> list[Run]:
    """Every run not finished, in the order the workers take them: running runs (by start), then
    queued ones in the order they were sent (worker/presence.py orders the queue the same way)."""
    from worker.presence import aware
    rows = s.scalars(select(Run).where(Run.status.in_(("queued", "running")))).all()
    running = sorted((r for r in rows if r.status == "running"), key=lambda r: (aware(r.started_at) is None,
                                                                                aware(r.started_at) or 0, r.id))
    queued = sorted((r for r in rows if r.status == "queued"),
                    key=lambda r: (aware(r.enqueued_at or r.created_at), r.id))
    return running + queued


def _calibrate(pending: list[dict], configs: list[dict], measured: list[dict]) -> set[int]:
    """Give each pending run that no finished run measures its calibration, when this process has it
    (worker/api/estimate.py: calibrations, which asks a worker for the missing ones); returns the ids
    of the runs whose calibration is being measured."""
    from worker import estimate
    from worker.api.estimate import calibrations, settings_key
    need = [(p, c) for p, c in zip(pending, configs) if estimate.basis(p, measured) is None]
    if not need:
        return set()
    found, measuring = calibrations([c for _, c in need])
    waiting = set()
    for p, c in need:
        key = settings_key(c)
        p["calibration"] = found.get(key)
        if key in measuring:
            waiting.add(p["id"])
    return waiting


def _measured(s: Session) -> list[dict]:
    """The speed measurements of the latest finished runs (worker/estimate.py: measurement)."""
    from worker import estimate
    from worker.presence import aware
    measured = []
    for run in s.scalars(select(Run).where(Run.status == "succeeded").order_by(Run.id.desc())
                         .limit(MEASURED_RUNS)).all():
        started, ended = aware(run.started_at), aware(run.finished_at)
        wall = (ended - started).total_seconds() if started and ended and ended >= started else None
        found = estimate.measurement(arm_key(run.config), run.config, run.summary or {}, wall)
        if found:
            measured.append(found)
    return measured


def _run_capacity(s: Session) -> int:
    """Runs the live workers of the gpu queue take at once."""
    from worker import presence
    return sum(w["concurrency"] for w in presence.workers(s) if w["alive"] and presence.RUN_QUEUE in w["queues"])


def list_workers() -> list[dict]:
    """The workers that announced themselves (worker/presence.py): name, queues, concurrency,
    started_at, heartbeat_at, seen_s, alive; a worker gone without a goodbye shows as not alive."""
    from worker.presence import workers
    with session() as s:
        return workers(s)


def run_detail(run_id: int) -> dict:
    """One run with its full config, summary, stored error, artifact folder and history (events in
    order: {at, attempt, kind, message}, e.g. a corrupt checkpoint moved aside)."""
    with session() as s:
        run = s.get(Run, run_id)
        if run is None:
            raise NotFound(f"no run {run_id}")
        name = s.get(Experiment, run.experiment_id).name if run.experiment_id else None
        history = s.scalars(select(RunEvent).where(RunEvent.run_id == run_id).order_by(RunEvent.id)).all()
        return {**run_row(run, experiment=name), "config": run.config, "error": run.error,
                "artifact_uri": run.artifact_uri,
                "history": [{"at": _iso(e.at), "attempt": e.attempt, "kind": e.kind, "message": e.message}
                            for e in history]}


CURVE_AXES = {"step": None, "epoch": "epoch", "tokens": "tokens"}
"""The x-axes of a training curve: the step itself, or the metric recorded beside it at every step."""


def curves(run_ids: list[int], name: str = "loss", x: str = "step") -> list[dict]:
    """Training-curve points {run_id, step, x, value} of metric `name` (loss: the total, label_loss,
    rationale_loss, val_accuracy, lr, tokens_per_s; see cotdistill.train.curves) against `x`: step, epoch or
    tokens (training tokens seen). A point whose step has no `x` recorded (a run made before tokens
    and epochs were logged) is left out."""
    if x not in CURVE_AXES:
        raise ValueError(f"curves: x must be one of {', '.join(CURVE_AXES)}, not {x!r}")
    with session() as s:
        rows = s.execute(select(Metric.run_id, Metric.step, Metric.value)
                         .where(Metric.run_id.in_(run_ids), Metric.name == name)
                         .order_by(Metric.run_id, Metric.step)).all()
        axis = {}
        if CURVE_AXES[x] is not None:
            axis = {(r, step): v for r, step, v in s.execute(
                select(Metric.run_id, Metric.step, Metric.value)
                .where(Metric.run_id.in_(run_ids), Metric.name == CURVE_AXES[x])).all()}
    if CURVE_AXES[x] is None:
        return [{"run_id": r, "step": step, "x": step, "value": v} for r, step, v in rows]
    return [{"run_id": r, "step": step, "x": axis[(r, step)], "value": v} for r, step, v in rows
            if (r, step) in axis]


def predictions(run_ids: list[int]) -> list[dict]:
    """Every stored prediction of the runs: {run_id, example_id, predicted, correct, gold, generated, scores}."""
    with session() as s:
        rows = s.execute(select(Prediction.run_id, Prediction.example_id, Prediction.predicted,
                                Prediction.correct, Prediction.generated, Prediction.scores)
                         .where(Prediction.run_id.in_(run_ids))
                         .order_by(Prediction.run_id, Prediction.id)).all()
    return [{"run_id": r, "example_id": ex, "predicted": p, "correct": c, "generated": g,
             "gold": (sc or {}).get("gold"), "scores": (sc or {}).get("scores"), "extra": sc or {}}
            for r, ex, p, c, g, sc in rows]


def _answers(run_ids: list[int], scoring: str | None = None, generated: frozenset[int] = frozenset()) -> list[dict]:
    """Only what paired comparisons need (no per-choice scores to decode, unless another scoring
    mode than the runs' own is asked for). Runs in `generated` were evaluated by generation: their
    own answers stand whatever `scoring` says."""
    if scoring is not None:
        out = []
        for p in predictions(run_ids):
            mode = None if p["run_id"] in generated else (p["extra"].get("by_mode") or {}).get(scoring)
            if mode is None and p["run_id"] not in generated and p["extra"].get("scoring") not in (None, scoring):
                raise ValueError(f"run {p['run_id']} did not compute scoring mode {scoring!r}")
            mode = mode or p
            out.append({"run_id": p["run_id"], "example_id": p["example_id"],
                        "predicted": mode["predicted"], "correct": mode["correct"]})
        return out
    with session() as s:
        rows = s.execute(select(Prediction.run_id, Prediction.example_id, Prediction.predicted,
                                Prediction.correct).where(Prediction.run_id.in_(run_ids))).all()
    return [{"run_id": r, "example_id": ex, "predicted": p, "correct": c} for r, ex, p, c in rows]


def prediction_counts(run_ids: list[int]) -> dict[int, int]:
    with session() as s:
        rows = s.execute(select(Prediction.run_id, func.count()).where(Prediction.run_id.in_(run_ids))
                         .group_by(Prediction.run_id)).all()
    return dict(rows)


GENERATED_NOTE = "evaluated by generation; scoring modes do not apply"
"""What a generate-mode arm says under a scoring switch: its generated accuracy is shown."""


def run_accuracy(run: dict, scoring: str | None = None) -> float | None:
    """A run's accuracy under one scoring mode (letter, text, calibrated); None if not computed. A run
    evaluated by generation has one accuracy, whatever `scoring` asks."""
    if scoring is None or scoring == run["summary"].get("scoring") or run.get("eval_mode") == "generate":
        return run["accuracy"]
    return (run["summary"].get("accuracy_by_mode") or {}).get(scoring)


def protocol(eval_mode: str, scoring: str | None) -> str:
    """How an arm's numbers were produced, in words: 'generation' or 'scoring (letter)'."""
    return "generation" if eval_mode == "generate" else f"scoring ({scoring or 'letter'})"


def compare(run_ids: list[int], *, scoring: str | None = None) -> list[dict]:
    """Accuracy per arm over its seeds (succeeded runs only): mean with a t-interval, and each seed.
    An arm is a config without its seed (cotdistill/stats/arms.py); `arm` its label among these runs,
    `row_key` the arm without dataset and student. `scoring` picks a scoring mode the runs computed
    (default: each run's own); arms evaluated by generation keep their generated accuracy, with
    `note` saying so. `protocol` says how the numbers were produced."""
    arms: dict[str, dict] = {}
    for r in list_runs(run_ids=run_ids):
        r["accuracy"] = run_accuracy(r, scoring)
        if r["status"] != "succeeded" or r["accuracy"] is None:
            continue
        own = r["summary"].get("scoring") or "letter"
        arm = arms.setdefault(r["arm_key"], {"arm_key": r["arm_key"], "row_key": r["row_key"], "arm": r["arm"],
                                             "dataset": r["dataset"], "student": r["student"],
                                             "placement": r["placement"], "perturbation": r["perturbation"],
                                             "perturbation_params": r["perturbation_params"],
                                             "untouched": r["untouched"], "eval_mode": r["eval_mode"],
                                             "protocol": protocol(r["eval_mode"], scoring or own),
                                             "note": GENERATED_NOTE if scoring and r["eval_mode"] == "generate" else None,
                                             "runs": [], "seeds": [], "accuracies": [], "collapsed": [],
                                             "unparsed_rates": []})
        arm["runs"].append(r["id"])
        arm["seeds"].append(r["seed"])
        arm["accuracies"].append(r["accuracy"])
        arm["collapsed"].append(bool(r["summary"].get("collapsed")))
        arm["unparsed_rates"].append(r["summary"].get("unparsed_rate"))
    out = []
    for arm in arms.values():
        ci = stats.mean_ci(arm["accuracies"])
        out.append({**arm, "mean": ci.estimate, "low": None if ci.low != ci.low else ci.low,
                    "high": None if ci.high != ci.high else ci.high, "n_seeds": len(arm["runs"])})
    return sorted(out, key=lambda a: (a["dataset"], a["student"], a["placement"], a["arm"]))


def paired(runs_a: list[int], runs_b: list[int], *, n_boot: int = 10_000, scoring: str | None = None,
           target: float | None = None) -> dict:
    """Arm A minus arm B, runs paired by seed, on the test items every seed pair evaluated.

    Two questions (DESIGN.md "Rules that keep results right"), the first one primary:
    - the procedure (`procedure`, and `low`/`high`/`p_value`/`verdict` at the top): does A's training
      procedure beat B's? The unit is the seed pair: a paired t-test over the per-pair accuracy
      differences (stats.procedure_diff); with one pair the verdict is stats.NEEDS_SEEDS and low, high
      and p are None. `budget`: what these seeds can detect (stats.seed_budget; `target`, default the
      observed difference, is the difference whose seed count is asked).
    - the test set (`test_set`): do these trained models differ on these items? Items are the unit,
      an item-cluster bootstrap interval (two-stage from stats.MIN_SEEDS_TO_RESAMPLE seed pairs) and
      the combined exact sign-flip p (McNemar's with one pair); `per_pair` holds each pair's McNemar.
    A seed only one arm ran is left out (`unmatched_seeds`). `diff` is the mean over seed pairs (the
    same for both). `a_only`/`b_only` count discordant (seed, item) pairs; `examples` say per example
    how many pairs A fixes (A right, B wrong) and breaks."""
    info = {r["id"]: r for r in list_runs(run_ids=list(runs_a) + list(runs_b))}
    by_seed_a = {info[a]["seed"]: a for a in runs_a if a in info}
    by_seed_b = {info[b]["seed"]: b for b in runs_b if b in info}
    seeds = sorted(by_seed_a.keys() & by_seed_b.keys())
    if not seeds:
        raise ValueError(f"the two arms share no seed (A ran seeds {sorted(by_seed_a)}, B ran "
                         f"{sorted(by_seed_b)}): runs are paired by seed, so there is nothing to compare")
    pairs = [(by_seed_a[s], by_seed_b[s]) for s in seeds]
    unmatched = {"a": sorted(by_seed_a.keys() - by_seed_b.keys()), "b": sorted(by_seed_b.keys() - by_seed_a.keys())}
    generated = frozenset(i for i, r in info.items() if r["eval_mode"] == "generate")
    preds = _answers([x for pair in pairs for x in pair], scoring, generated)
    table: dict[int, dict[str, bool]] = {}
    for p in preds:
        table.setdefault(p["run_id"], {})[p["example_id"]] = p["correct"]
    items = set.intersection(*(set(table.get(x, {})) for pair in pairs for x in pair))
    items = sorted(items)
    if not items:
        raise ValueError("the two arms share no evaluated test item (are both finished?)")
    a_rows = [[table[a][ex] for ex in items] for a, _ in pairs]
    b_rows = [[table[b][ex] for ex in items] for _, b in pairs]
    result = stats.seed_paired_diff(a_rows, b_rows, n_boot=n_boot)
    procedure = stats.procedure_diff(result.per_pair_diff)
    budget = stats.seed_budget(result.per_pair_diff, target=target)
    per_example = {}
    for a_row, b_row in zip(a_rows, b_rows):
        for ex, ca, cb in zip(items, a_row, b_row):
            e = per_example.setdefault(ex, {"example_id": ex, "fixes": 0, "breaks": 0, "pairs": 0})
            e["pairs"] += 1
            e["fixes"] += int(ca and not cb)
            e["breaks"] += int(cb and not ca)
    n_pairs = len(pairs)
    changed = [dict(e, consistent=(e["fixes"] == n_pairs or e["breaks"] == n_pairs))
               for e in per_example.values() if e["fixes"] or e["breaks"]]
    per_pair = [{"seed": s, "run_a": a, "run_b": b, "diff": d, "a_only": t.a_only, "b_only": t.b_only,
                 "p_value": t.p_value}
                for s, (a, b), d, t in zip(seeds, pairs, result.per_pair_diff, result.per_pair)]
    interval = result.interval
    return {"pairs": pairs, "seeds": seeds, "unmatched_seeds": unmatched, "n_items": result.n_items,
            "diff": procedure.estimate, "low": procedure.low, "high": procedure.high,
            "p_value": procedure.p_value, "verdict": procedure.verdict,
            "procedure": {**procedure.to_dict(), "per_pair_diff": list(procedure.per_pair_diff)},
            "budget": budget.to_dict(),
            "test_set": {"low": interval.low, "high": interval.high, "p_value": result.p_value,
                         "interval_method": result.interval_method, "test_method": result.test_method},
            "a_only": sum(t.a_only for t in result.per_pair), "b_only": sum(t.b_only for t in result.per_pair),
            "per_pair": per_pair,
            "examples": sorted(changed, key=lambda e: (-(e["fixes"] + e["breaks"]), e["example_id"])),
            "basis": _basis(preds, pairs)}


def _basis(preds: list[dict], pairs: list[tuple[int, int]]) -> dict:
    """Whether both arms mostly answer one constant label (then a tight interval means little), per
    seed pair; the warning stands when it holds for every pair."""
    by_run: dict[int, list[dict]] = {}
    for p in preds:
        by_run.setdefault(p["run_id"], []).append(p)
    per_pair = [paired_basis(by_run.get(a, []), by_run.get(b, [])) for a, b in pairs
                if by_run.get(a) and by_run.get(b)]
    warning = per_pair[0]["warning"] if per_pair and all(x["constant"] for x in per_pair) else None
    return {"pairs": per_pair, "warning": warning}


# ------------------------------------------------------------------------------------------ for the app

def launch_options() -> dict:
    """What a launch form may offer, as plain data: placements, perturbation kinds with their default
    parameters, perturbation levels, loss normalisations, the built-in student sizes, the default
    run config (so the app imports no science), the first experiment (`first_run`, with `claims`:
    what it should show) and the presets (cotdistill.studies.testbed's PRESETS, if it has any, then
    cotdistill.studies.presets'): [{key, title, shows, expected, matrix}], and the key-token study's defaults on
    its built-in task (`key_study`: dataset, ks, seeds, shows)."""
    from cotdistill.studies import testbed
    from cotdistill.config import LEVELS, LOSS_NORMALIZATIONS, PLACEMENTS, RunConfig, from_dict
    from cotdistill.sequences.perturbations import DEFAULT_PARAMS
    from cotdistill.studies.presets import PRESETS
    from cotdistill.students.loading import SMOLLM2, TINY_SIZES
    FIRST_RUN = testbed.FIRST_RUN
    first = {"data_options": dict(FIRST_RUN["base"]["data"]["options"]), "placements": list(FIRST_RUN["placements"]),
             "perturbations": [p["kind"] for p in FIRST_RUN["perturbations"]], "seeds": list(FIRST_RUN["seeds"]),
             "dataset": FIRST_RUN["base"]["data"]["name"], "student": dict(FIRST_RUN["base"]["student"])}
    shows = getattr(testbed, "FIRST_RUN_SHOWS", None)
    first["claims"] = [shows] if isinstance(shows, str) else list(shows or claims(first["placements"],
                                                                                  first["perturbations"]))
    presets = [p for key, spec in (getattr(testbed, "PRESETS", None) or {}).items()
               if (p := _preset(key, spec)) is not None]
    presets += [p for key, spec in PRESETS.items() if (p := _preset(key, spec)) is not None]
    return {"placements": list(PLACEMENTS), "perturbations": {k: dict(v) for k, v in DEFAULT_PARAMS.items()},
            "levels": list(LEVELS), "loss_normalizations": list(LOSS_NORMALIZATIONS),
            "tiny_sizes": list(TINY_SIZES), "pretrained": [SMOLLM2],
            # The form starts on the first experiment: the testbed's student and training settings.
            "defaults": from_dict(RunConfig, {k: v for k, v in FIRST_RUN["base"].items() if k != "data"}).to_dict(),
            "first_run": first, "presets": presets, "key_study": copy.deepcopy(testbed.KEY_STUDY)}


CLAIMS = {("after", "none"): "`after` (the rationale after the label) beats label-only across seeds, the study's "
                             "first claim",
          ("before", "none"): "`before` (the rationale, then the label) is shown beside it",
          ("after", "shuffle"): "`after · shuffle`, the rationale's words shuffled, keeps most of the gain "
                                "(the second claim)",
          ("after", "key_tokens"): "`after · key_tokens`, a few key tokens of the rationale, gives the same "
                                   "gain (the third claim)",
          ("after", "filler"): "`after · filler`, filler instead of the rationale, does not beat label-only "
                               "(a negative control)",
          ("after", "mismatch"): "`after · mismatch`, another question's rationale, shows how much of the gain "
                                 "is the question's own facts"}
"""What each arm of a matrix with a label-only arm is there to show (the Launch page's third line)."""


def claims(placements: list[str], perturbations: list[str]) -> list[str]:
    """What a matrix of these placements and perturbation kinds should show, one phrase per arm it has
    a claim for, in CLAIMS' order (label-only is the reference of them all)."""
    if "none" not in placements:
        return []
    arms = {(p, k) for p in placements for k in perturbations}
    return [text for arm, text in CLAIMS.items() if arm in arms]


def _preset(key: str, spec: dict) -> dict | None:
    """A preset as the Launch page offers it: {key, title, shows, expected, matrix: {name, base,
    factors}}, from a spec holding a `matrix` ({base, factors}) or the first experiment's shape (base
    with data and student, placements, perturbations, seeds); None for a spec of neither shape."""
    import copy
    if isinstance(spec.get("matrix"), dict) and "factors" in spec["matrix"]:
        matrix = copy.deepcopy(spec["matrix"])
    elif {"base", "placements", "perturbations", "seeds"} <= set(spec):
        base = copy.deepcopy(spec["base"])
        data, student = base.pop("data", {}), base.pop("student", None)
        matrix = {"base": {**base, "data": {k: v for k, v in data.items() if k != "name"}},
                  "factors": {"data.name": [data.get("name", "synthetic-count")],
                              **({"student": [student]} if student else {}),
                              "placement": list(spec["placements"]),
                              "perturbation": [p if isinstance(p, dict) else {"kind": p} for p in spec["perturbations"]],
                              "seed": list(spec["seeds"])}}
    else:
        return None
    expected = spec.get("expected")
    if not expected and isinstance(spec.get("expected_s"), (int, float)):
        expected = f"about {max(1, round(spec['expected_s'] / 60))} min"
    return {"key": key, "title": spec.get("title") or key, "shows": spec.get("shows") or spec.get("description") or "",
            "expected": expected or "", "matrix": {"name": key, **matrix}}


def plan_matrix(matrix: dict) -> dict:
    """What submitting a matrix ({name, base, factors}) would do, without submitting: its cells and
    distinct runs; of those, how many the experiment of that name already holds (`in_experiment`, with
    `queued`: how many of those are queued or running), how many an identical succeeded run elsewhere
    would serve (`reused`), how many would run (`new`); `existing` = in_experiment + reused; the first
    cell's resolved config (for a preview); `estimate`, when the new runs would be done on the live
    workers, behind every run already queued or running (worker/estimate.py; `measuring`: runs
    waiting for a calibration of this machine); `disk`, what one new run writes (checkpoint while it
    trains, model copy it keeps), when a calibration or finished run tells the student's size.
    Raises ConfigError for a bad matrix."""
    from worker import estimate
    from worker.experiments import expand, matrix_of
    m = matrix_of(matrix)
    cells = expand(m)
    hashes = [cfg.hash() for _, cfg in cells]
    with session() as s:
        done = set(s.scalars(select(Run.config_hash).where(Run.config_hash.in_(hashes),
                                                           Run.status == "succeeded")).all())
        active = set(s.scalars(select(Run.config_hash).where(Run.config_hash.in_(hashes),
                                                             Run.status.in_(("queued", "running")))).all())
        mine = dict(s.execute(select(Run.config_hash, Run.status).join(Experiment)
                              .where(Experiment.name == m.name, Run.config_hash.in_(hashes),
                                     Run.status.in_(("queued", "running", "succeeded")))).all())
        experiment = s.scalar(select(Experiment).where(Experiment.name == m.name))
        for cell in (experiment.cells or []) if experiment else []:     # its cells served by reused or
            h = cell["config_hash"]                                      # shared runs of other experiments
            if h in hashes and h not in mine and (h in done or h in active):
                mine[h] = "succeeded" if h in done else "queued"
        queue = _queue(s)
        ahead = [estimate.pending(run.id, arm_key(run.config), run.config, run.status, run.step, run.progress)
                 for run in queue]
        new, configs, seen = [], [], set()
        for i, ((_, cfg), h) in enumerate(zip(cells, hashes)):
            if h not in done and h not in mine and h not in seen:
                seen.add(h)
                config = cfg.to_dict()
                new.append(estimate.pending(-1 - i, arm_key(config), config, "queued", 0, None))
                configs.append(config)
        measured = _measured(s)
        measuring = _calibrate(ahead + new, [run.config for run in queue] + configs, measured)
        expected = estimate.estimate(ahead + new, measured, workers=_run_capacity(s), mine={p["id"] for p in new})
        disk = _disk(s, new, configs)
    from worker.experiments import CONFIRM_ABOVE
    distinct = list(dict.fromkeys(hashes))   # identical cells (e.g. label-only × perturbations) run once
    in_experiment = sum(h in mine for h in distinct)
    reused = sum(h in done and h not in mine for h in distinct)
    expected["measuring"] = sorted({p["label"] for p in ahead + new if p["id"] in measuring
                                    and p["label"] in expected["unknown"]})
    return {"cells": len(cells), "runs": len(distinct), "duplicates": len(cells) - len(distinct),
            "in_experiment": in_experiment, "queued": sum(mine.get(h) in ("queued", "running") for h in distinct),
            "reused": reused, "existing": in_experiment + reused, "new": len(distinct) - in_experiment - reused,
            "confirm_above": CONFIRM_ABOVE, "estimate": {k: v for k, v in expected.items() if k not in ("per_run_s", "ends_s")},
            "disk": disk,
            "first_config": cells[0][1].to_dict() if cells else None}


def _disk(s: Session, new: list[dict], configs: list[dict]) -> dict | None:
    """The largest of the new runs' disk needs (cotdistill.estimate.run_disk), from the student's size
    as its calibration or a succeeded run of the same student recorded it, with the student's name;
    None when no size is known."""
    import json as _json

    from cotdistill.estimate import run_disk
    sizes, recorded = [], None
    for p, config in zip(new, configs):
        student = config.get("student") or {}
        size = p.get("calibration")
        if not (size and size.get("parameters")):
            if recorded is None:
                recorded = {}
                for cfg, summary in s.execute(select(Run.config, Run.summary).where(Run.status == "succeeded")
                                              .order_by(Run.id.desc()).limit(MEASURED_RUNS)).all():
                    if (summary or {}).get("fine_tuned") and summary.get("parameters"):
                        recorded.setdefault(_json.dumps(cfg.get("student"), sort_keys=True),
                                            {"parameters": summary["parameters"],
                                             "trainable": summary.get("trainable_parameters") or summary["parameters"]})
            size = recorded.get(_json.dumps(student, sort_keys=True))
        if not size:
            continue
        disk = run_disk(size["parameters"], size["trainable"], dtype=student.get("dtype") or "auto",
                        lora=student.get("lora") is not None)
        if (config.get("train") or {}).get("steps") == 0:        # the untouched student writes neither
            disk = {key: 0 for key in disk}
        sizes.append({**disk, "student": student.get("name")})
    return max(sizes, key=lambda d: d["peak"] + d["model"]) if sizes else None


def mode_diagnostics(run_ids: list[int], scoring: str, *, n_boot: int = 2000) -> dict[int, dict]:
    """Each run's label-bias diagnostics (cotdistill.evaluate.diagnostics: collapsed, collapse_reason,
    per-label accuracy, distributions, majority baseline) under one scoring mode. A run's summary holds
    them for its primary scoring only: for that mode they are returned as stored, for another they are
    computed from the stored predictions' per-mode answers (the accuracy's interval by bootstrap over
    n_boot resamples, seeded by the run's seed). Runs that did not compute the mode are left out."""
    from cotdistill.evaluate.diagnostics import diagnose
    from cotdistill.stats.inference import bootstrap_ci
    runs = {r["id"]: r for r in list_runs(run_ids=run_ids) if r["status"] == "succeeded"}
    out: dict[int, dict] = {}
    others = [i for i, r in runs.items()            # generated answers have no scoring modes: their own
              if r["summary"].get("scoring") != scoring and r["eval_mode"] != "generate"]
    for i, r in runs.items():
        if i not in others and "collapsed" in r["summary"]:
            out[i] = {key: r["summary"].get(key) for key in (
                "collapsed", "collapse_reason", "per_label_accuracy", "prediction_distribution",
                "gold_distribution", "majority_label", "majority_baseline", "accuracy", "below_baseline",
                "below_baseline_reason", "high_unparsed", "unparsed_reason", "unparsed_rate")}
    records: dict[int, list[dict]] = {}
    for p in predictions(others) if others else []:
        mode = (p["extra"].get("by_mode") or {}).get(scoring)
        if mode is None or p["gold"] is None:
            records.setdefault(p["run_id"], []).append(None)
            continue
        records.setdefault(p["run_id"], []).append({"example_id": p["example_id"], "gold": p["gold"],
                                                    "predicted": mode["predicted"], "correct": mode["correct"]})
    for run_id, rows in records.items():
        if not rows or any(row is None for row in rows):
            continue
        interval = bootstrap_ci([row["correct"] for row in rows], n_boot=n_boot, seed=runs[run_id]["seed"])
        found = diagnose(rows, accuracy_low=interval.low, accuracy_high=interval.high)
        out[run_id] = {**{key: found[key] for key in (
            "collapsed", "collapse_reason", "per_label_accuracy", "prediction_distribution",
            "gold_distribution", "majority_label", "majority_baseline", "below_baseline",
            "below_baseline_reason")}, "accuracy": interval.estimate}
    return out
