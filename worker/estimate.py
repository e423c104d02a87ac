"""How long an experiment still needs, from the measured speed of runs that finished.

    done = [measurement(config, summary, wall_s) for each finished run]      # None when not measurable
    left = [pending(run_id, config, status, step, progress) for each run not finished]
    estimate(left, [m for m in done if m], workers=2)

How (the Runs screen says the same in words):
- speed: the median training tokens/s of finished runs of the same student (name and size) on this
  system;
- work: tokens per optimizer step of the run's arm (a finished run with the same settings but the
  seed), else of a finished run with the same dataset, student and placement, scaled by the batch
  (batch size × gradient accumulation); a run needs (steps left) × tokens per step ÷ tokens/s;
- plus the arm's measured evaluation time and start-up time (wall time minus training and
  evaluation: data, tokenizer, model, writing results);
- a running run in training counts its own ETA instead, one in evaluation the rest of its evaluation;
- the runs are taken in order by the live workers of the gpu queue, each next run by the first worker
  to be free; runs of other experiments are not counted.
A run with no finished run of its arm or of a similar one is unknown: the estimate is unknown until one
such run has finished. An untouched-student run (train.steps 0) trains nothing: it measures and needs
only evaluation and start-up time.
"""

from __future__ import annotations

import math
import statistics


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


def pending(run_id: int, arm_key: str, config: dict, status: str, step: int, progress: dict | None) -> dict:
    """A run not finished yet, as `estimate` takes it."""
    return {"id": run_id, "arm_key": arm_key, "similar": _similar(config), "student": _student(config),
            "batch": _batch(config), "steps": int((config.get("train") or {}).get("steps") or 0),
            "status": status, "step": int(step or 0), "progress": progress or {},
            "label": f"{config['data']['name']} · {config['student'].get('name')} · {config.get('placement')}"}


def _median(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def seconds_left(run: dict, measured: list[dict]) -> float | None:
    """Seconds `run` still needs on one worker, or None when nothing measured matches it."""
    same = [m for m in measured if m["arm_key"] == run["arm_key"]]
    similar = same or [m for m in measured if m["similar"] == run["similar"]]
    rate = _median([m["tokens_per_s"] for m in measured if m["student"] == run["student"]])
    if not similar or rate is None and run["steps"] > 0:
        return None
    per_step = _median([m["tokens_per_step"] * run["batch"] / m["batch"] for m in similar
                        if m["tokens_per_step"] is not None])
    if per_step is None and run["steps"] > 0:
        return None
    eval_s = _median([m["eval_s"] for m in similar])
    overhead = _median([m["overhead_s"] for m in similar])
    p = run["progress"]
    if run["status"] == "running" and p.get("phase") == "save":
        return 0.0
    if run["status"] == "running" and p.get("phase") == "evaluate":
        total, done = p.get("phase_total") or 0, p.get("phase_done") or 0
        return eval_s * (1 - done / total) if total else eval_s
    if run["status"] == "running" and p.get("eta_s") is not None and math.isfinite(p["eta_s"]):
        return p["eta_s"] + eval_s
    steps_left = max(0, run["steps"] - (run["step"] if run["status"] == "running" else 0))
    start = overhead if run["status"] == "queued" else 0.0
    return start + (steps_left * per_step / rate if steps_left else 0.0) + eval_s


def makespan(running: list[float], queued: list[float], workers: int) -> float:
    """Wall seconds until the last run ends: running runs hold workers first; each queued run, in
    order, goes to the first worker to be free."""
    slots = max(workers, len(running))       # a running run holds a worker even if its row went quiet
    free = sorted(running + [0.0] * (slots - len(running)))
    for seconds in queued:
        free[0] += seconds
        free.sort()
    return max(free, default=0.0)


def estimate(runs: list[dict], measured: list[dict], *, workers: int) -> dict:
    """The experiment's remaining wall time over `workers` live workers; see the module docstring."""
    left = {r["id"]: seconds_left(r, measured) for r in runs}
    unknown = sorted({r["label"] for r in runs if left[r["id"]] is None})
    result = {"runs_left": len(runs), "running": sum(r["status"] == "running" for r in runs),
              "workers": workers, "measured_runs": len(measured), "unknown": unknown, "per_run_s": left,
              "work_s": None, "remaining_s": None}
    if not runs:
        result.update(work_s=0.0, remaining_s=0.0)
        return result
    if unknown:
        return result
    running = [left[r["id"]] for r in runs if r["status"] == "running"]
    queued = [left[r["id"]] for r in runs if r["status"] != "running"]
    result["work_s"] = sum(running) + sum(queued)
    if workers > 0:
        result["remaining_s"] = makespan(running, queued, workers)
    return result
