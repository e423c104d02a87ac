"""The expected duration of an experiment from measured speed: exact values of each step."""

import pytest

from worker.estimate import estimate, makespan, measurement, pending, seconds_left


def config(placement="after", batch=8, steps=100, size="tiny", dataset="synthetic-count", accum=1):
    return {"data": {"name": dataset}, "student": {"name": "tiny", "size": size}, "placement": placement,
            "train": {"batch_size": batch, "grad_accum": accum, "steps": steps}}


SUMMARY = {"tokens_per_s": 2000.0, "train_seconds": 50.0, "train_steps": 100, "resumed_from_step": 0,
           "eval_seconds": 4.0}


def test_measurement_of_a_finished_run():
    m = measurement("arm1", config(), SUMMARY, wall_s=60.0)
    assert m == {"arm_key": "arm1", "similar": ("synthetic-count", "tiny", "tiny", "after"), "student": ("tiny", "tiny"),
                 "batch": 8, "tokens_per_step": 1000.0, "tokens_per_s": 2000.0, "eval_s": 4.0, "overhead_s": 6.0}
    resumed = measurement("arm1", config(), {**SUMMARY, "resumed_from_step": 50}, wall_s=None)
    assert resumed["tokens_per_step"] == 2000.0 and resumed["overhead_s"] == 0.0
    assert measurement("arm1", config(), {"noop": True}, 1.0) is None
    assert measurement("arm1", config(), {**SUMMARY, "train_steps": 0}, 1.0) is None


def test_seconds_left_by_arm_then_by_similar_runs_scaled_by_the_batch():
    measured = [measurement("arm1", config(), SUMMARY, wall_s=60.0)]      # 1000 tokens/step, 2000 tokens/s
    queued = pending(1, "arm1", config(steps=200), "queued", 0, None)
    assert seconds_left(queued, measured) == 6.0 + 200 * 1000 / 2000 + 4.0               # 110 s
    bigger = pending(2, "other", config(batch=16, steps=100), "queued", 0, None)        # same dataset, student, placement
    assert seconds_left(bigger, measured) == 6.0 + 100 * 2000 / 2000 + 4.0               # 110 s
    running = pending(3, "arm1", config(steps=200), "running", 150, {"phase": "train", "eta_s": 20.0})
    assert seconds_left(running, measured) == 24.0
    no_eta = pending(4, "arm1", config(steps=200), "running", 150, {"phase": "train"})
    assert seconds_left(no_eta, measured) == 50 * 1000 / 2000 + 4.0                      # no start-up: it started
    evaluating = pending(5, "arm1", config(), "running", 100, {"phase": "evaluate", "phase_done": 30, "phase_total": 40})
    assert seconds_left(evaluating, measured) == 1.0
    saving = pending(5, "arm1", config(), "running", 100, {"phase": "save", "phase_done": 1, "phase_total": 3})
    assert seconds_left(saving, measured) == 0.0
    assert seconds_left(pending(6, "x", config(placement="before"), "queued", 0, None), measured) is None
    assert seconds_left(pending(7, "x", config(size="small"), "queued", 0, None), measured) is None


def test_makespan_shares_runs_in_order_over_the_workers():
    assert makespan([], [10.0, 10.0, 10.0], 1) == 30.0
    assert makespan([], [10.0, 10.0, 10.0], 2) == 20.0
    assert makespan([5.0], [10.0, 10.0], 2) == 15.0          # the free worker takes one, the busy one the next
    assert makespan([30.0], [10.0], 2) == 30.0
    assert makespan([4.0, 6.0], [1.0], 1) == 6.0            # both run although one worker is listed
    assert makespan([], [], 3) == 0.0


def test_estimate_over_workers_and_when_unknown():
    measured = [measurement("arm1", config(), SUMMARY, wall_s=60.0)]
    left = [pending(1, "arm1", config(), "running", 50, {"phase": "train", "eta_s": 25.0}),
            pending(2, "arm1", config(), "queued", 0, None), pending(3, "arm1", config(), "queued", 0, None)]
    found = estimate(left, measured, workers=2)
    # running: 25 + 4 = 29 s; each queued: 6 + 50 + 4 = 60 s → worker A 60, worker B 29 + 60 = 89
    assert found == {"runs_left": 3, "running": 1, "workers": 2, "measured_runs": 1, "unknown": [],
                     "per_run_s": {1: 29.0, 2: 60.0, 3: 60.0}, "work_s": 149.0, "remaining_s": 89.0}
    assert estimate(left, measured, workers=0)["remaining_s"] is None
    assert estimate(left, measured, workers=0)["work_s"] == 149.0
    unknown = estimate(left + [pending(4, "b", config(placement="before"), "queued", 0, None)], measured, workers=1)
    assert unknown["unknown"] == ["synthetic-count · tiny · before"] and unknown["remaining_s"] is None
    assert estimate(left, [], workers=1)["unknown"] == ["synthetic-count · tiny · after"]
    assert estimate([], [], workers=1)["remaining_s"] == 0.0


def test_an_untouched_student_run_needs_only_its_start_up_and_evaluation():
    """train.steps 0 trains nothing: its measurement has evaluation and start-up time only, and a
    pending one needs no training speed (none measured yet is fine)."""
    untouched = {"fine_tuned": False, "train_steps": 0, "tokens_per_s": None, "train_seconds": 0.0, "eval_seconds": 3.0}
    m = measurement("base", config(placement="none", steps=0), untouched, wall_s=10.0)
    assert m == {"arm_key": "base", "similar": ("synthetic-count", "tiny", "tiny", "none"), "student": ("tiny", "tiny"),
                 "batch": 8, "tokens_per_step": None, "tokens_per_s": None, "eval_s": 3.0, "overhead_s": 7.0}
    queued = pending(1, "base", config(placement="none", steps=0), "queued", 0, None)
    assert seconds_left(queued, [m]) == 7.0 + 3.0
    trained = [measurement("arm1", config(placement="none"), SUMMARY, wall_s=60.0)]      # 1000 tokens/step
    assert seconds_left(queued, trained) == 6.0 + 4.0           # a trained run's start-up and evaluation
    assert seconds_left(pending(2, "arm1", config(placement="none", steps=10), "queued", 0, None), [m]) is None
    assert seconds_left(pending(3, "arm1", config(placement="none", steps=10), "queued", 0, None), [m] + trained) == \
        6.0 + 10 * 1000 / 2000 + 4.0                            # the trained measurement alone gives the speed
    assert estimate([queued], [m], workers=1)["remaining_s"] == 10.0
