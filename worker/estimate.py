"""How long an experiment still needs: from the measured speed of runs that finished, else from a
calibration of this machine (cotdistill/throughput.py), over the queue as it stands.

    done = [measurement(config, summary, wall_s) for each finished run]      # None when not measurable
    queue = [pending(run_id, config, status, step, progress, calibration) for every run not finished]
    estimate(queue, [m for m in done if m], workers=2, mine={ids of the experiment's runs})

How (the Runs and Launch screens say the same in words):
- speed: the median training tokens/s of finished runs of the same student (name and size) on this
  system;
- work: tokens per optimizer step of the run's arm (a finished run with the same settings but the
  seed), else of a finished run with the same dataset, student and placement, scaled by the batch
  (batch size × gradient accumulation); a run needs (steps left) × tokens per step ÷ tokens/s;
- plus the arm's measured evaluation time and start-up time (wall time minus training and
  evaluation: data, tokenizer, model, writing results);
- before any such run has finished, the run's calibration: a worker timed a few training steps and
  test questions of the same settings on this machine (start-up, seconds per step, seconds per
  question × the test questions, plus the validations the run will do);
- a running run in training counts its own ETA plus its evaluation; one in evaluation the rest of
  its evaluation (from its own pace once it has one);
- the queue: every run not finished, of every experiment, in the order the workers take them
  (running runs first, then queued ones in the order they were sent); each next run goes to the first
  worker to be free. An experiment is done when the last of its runs is; runs queued after it do not
  count. Generation and attribution jobs, which share the queue, are not counted.
A run with no finished run of its arm or of a similar one and no calibration is unknown, and so is
the end of every experiment queued behind it. An untouched-student run (train.steps 0) trains
nothing: it needs only evaluation and start-up time.
"""

from __future__ import annotations

import math
import statistics

from cotdistill.throughput import run_seconds, validations


def _student(config: dict) -> tuple:
    s = config.get("student") or {}
    return (s.get("name"), s.get("size") if s.get("name") == "tiny" else None)


def _similar(config: dict) -> tuple:
    return (config["data"]["name"], *_student(config), config.get("placement"))


def _batch(config: dict) -> int:
    t = config.get("train") or {}
    return int(t.get("batch_size") or 1) * int(t.get("grad_accum") or 1)


def measurement(arm_key: str, config: dict, summary: dict, wall_s: float | None) -> dict | None:
    """What a finished run says about speed: tokens per step, tokens/s, evaluation and start-up
    seconds. None when it trained nothing measurable (a reused or no-op run, a zero time)."""
    rate, seconds = summary.get("tokens_per_s"), summary.get("train_seconds")
    steps = (summary.get("train_steps") or 0) - (summary.get("resumed_from_step") or 0)
    eval_s = float(summary.get("eval_seconds") or 0.0)
    if summary.get("fine_tuned") is False:      # the untouched student: evaluation and start-up only
        return {"arm_key": arm_key, "similar": _similar(config), "student": _student(config),
                "batch": _batch(config), "tokens_per_step": None, "tokens_per_s": None, "eval_s": eval_s,
                "overhead_s": max(0.0, wall_s - eval_s) if wall_s is not None else 0.0}
    if not rate or not seconds or steps <= 0 or not math.isfinite(rate) or rate <= 0:
        return None
    overhead = max(0.0, wall_s - seconds - eval_s) if wall_s is not None else 0.0
    return {"arm_key": arm_key, "similar": _similar(config), "student": _student(config), "batch": _batch(config),
            "tokens_per_step": rate * seconds / steps, "tokens_per_s": rate, "eval_s": eval_s,
            "overhead_s": overhead}


def pending(run_id: int, arm_key: str, config: dict, status: str, step: int, progress: dict | None,
            calibration: dict | None = None, *, experiment_id: int | None = None) -> dict:
    """A run not finished yet, as `estimate` takes it; `calibration` (cotdistill.throughput.calibrate's
    result for its settings on this machine) is used while no finished run measures it."""
    e = config.get("eval") or {}
    return {"id": run_id, "arm_key": arm_key, "similar": _similar(config), "student": _student(config),
            "batch": _batch(config), "steps": int((config.get("train") or {}).get("steps") or 0),
            "every": int(e.get("every") or 0), "val_size": int(e.get("val_size") or 64),
            "status": status, "step": int(step or 0), "progress": progress or {}, "calibration": calibration,
            "experiment_id": experiment_id,
            "label": f"{config['data']['name']} · {config['student'].get('name')} · {config.get('placement')}"}


def _median(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def basis(run: dict, measured: list[dict]) -> dict | None:
    """What `run`'s duration is reckoned from: {step_s (seconds per training step), eval_s,
    overhead_s, validation_s (its validations, when not already inside the measured speed), source
    ('measured' or 'calibrated')}, or None when nothing measured or calibrated matches it."""
    same = [m for m in measured if m["arm_key"] == run["arm_key"]]
    similar = same or [m for m in measured if m["similar"] == run["similar"]]
    rate = _median([m["tokens_per_s"] for m in measured if m["student"] == run["student"]])
    per_step = _median([m["tokens_per_step"] * run["batch"] / m["batch"] for m in similar
                        if m["tokens_per_step"] is not None])
    if similar and (run["steps"] == 0 or (rate is not None and per_step is not None)):
        return {"step_s": per_step / rate if run["steps"] > 0 else 0.0,
                "eval_s": _median([m["eval_s"] for m in similar]),
                "overhead_s": _median([m["overhead_s"] for m in similar]), "validation_s": 0.0,
                "source": "measured"}
    cal = run.get("calibration")
    if not cal:
        return None
    n_val = min(run["val_size"], cal["n_test"])
    return {"step_s": cal["step_s"], "eval_s": cal["n_test"] * cal["eval_s_per_item"],
            "overhead_s": cal["start_s"],
            "validation_s": validations(run["steps"], run["every"]) * n_val * cal["eval_s_per_item"],
            "source": "calibrated"}


def seconds_left(run: dict, measured: list[dict]) -> float | None:
    """Seconds `run` still needs on one worker, or None when nothing measured or calibrated matches it."""
    b = basis(run, measured)
    if b is None:
        return None
    p, running = run["progress"], run["status"] == "running"
    if running and p.get("phase") == "save":
        return 0.0
    if running and p.get("phase") == "evaluate":
        if p.get("phase_eta_s") is not None and math.isfinite(p["phase_eta_s"]):
            return float(p["phase_eta_s"])
        total, done = p.get("phase_total") or 0, p.get("phase_done") or 0
        return b["eval_s"] * (1 - done / total) if total else b["eval_s"]
    if running and p.get("eta_s") is not None and math.isfinite(p["eta_s"]):
        return p["eta_s"] + b["eval_s"]          # the pace so far includes its validations
    steps_left = max(0, run["steps"] - (run["step"] if running else 0))
    share = steps_left / run["steps"] if run["steps"] else 0.0
    start = b["overhead_s"] if run["status"] == "queued" else 0.0
    return start + steps_left * b["step_s"] + share * b["validation_s"] + b["eval_s"]


def schedule(running: list[float], queued: list[float], workers: int) -> list[float]:
    """When each run ends (seconds from now), running runs first, then queued ones in order: running
    runs hold workers first; each queued run goes to the first worker to be free (with no worker at
    all, as if there were one)."""
    slots = max(workers, len(running), 1)    # a running run holds a worker even if its row went quiet
    free = sorted(running + [0.0] * (slots - len(running)))
    ends = list(running)
    for seconds in queued:
        start = free.pop(0)
        ends.append(start + seconds)
        free.append(start + seconds)
        free.sort()
    return ends


def makespan(running: list[float], queued: list[float], workers: int) -> float:
    """Wall seconds until the last run ends (see `schedule`)."""
    return max(schedule(running, queued, workers), default=0.0)


def estimate(runs: list[dict], measured: list[dict], *, workers: int, mine: set[int] | None = None) -> dict:
    """When the runs of `mine` (default: all of `runs`) are done. `runs`: every run not finished, in
    the order the workers take them (the queue); those not in `mine` count only while they run or
    are queued ahead of the last of `mine`. See the module docstring.

    Keys: runs_left, running (of mine), workers, measured_runs, unknown (labels of the runs, mine or
    ahead, with nothing to reckon from), calibrated (how many of mine are reckoned from a
    calibration), ahead (runs of others ahead of the last of mine), per_run_s, work_s (mine, one
    worker), remaining_s (None when unknown or no worker)."""
    mine = {r["id"] for r in runs} if mine is None else set(mine)
    order = [r for r in runs if r["status"] == "running"] + [r for r in runs if r["status"] != "running"]
    last = max((i for i, r in enumerate(order) if r["id"] in mine), default=-1)
    counted = [r for i, r in enumerate(order) if r["id"] in mine or i < last or r["status"] == "running"]
    left = {r["id"]: seconds_left(r, measured) for r in counted}
    own = [r for r in counted if r["id"] in mine]
    unknown = sorted({r["label"] for r in counted if left[r["id"]] is None})
    result = {"runs_left": len(own), "running": sum(r["status"] == "running" for r in own),
              "workers": workers, "measured_runs": len(measured), "unknown": unknown,
              "calibrated": sum(1 for r in own if left[r["id"]] is not None
                                and basis(r, measured)["source"] == "calibrated"),
              "ahead": sum(r["id"] not in mine for r in counted),
              "per_run_s": {r["id"]: left[r["id"]] for r in own}, "ends_s": {}, "work_s": None,
              "remaining_s": None}
    if not own:
        result.update(work_s=0.0, remaining_s=0.0)
        return result
    if unknown:
        return result
    result["work_s"] = sum(left[r["id"]] for r in own)
    if workers > 0:
        running = [r for r in counted if r["status"] == "running"]
        queued = [r for r in counted if r["status"] != "running"]
        ends = schedule([left[r["id"]] for r in running], [left[r["id"]] for r in queued], workers)
        result["ends_s"] = {r["id"]: end for r, end in zip(running + queued, ends) if r["id"] in mine}
        result["remaining_s"] = max(result["ends_s"].values())
    return result


def planned_seconds(calibration: dict, config: dict) -> float:
    """A whole new run of `config` from its calibration (cotdistill.throughput.run_seconds)."""
    e = config.get("eval") or {}
    return run_seconds(calibration, steps=int((config.get("train") or {}).get("steps") or 0),
                       every=int(e.get("every") or 0), val_size=int(e.get("val_size") or 64))
