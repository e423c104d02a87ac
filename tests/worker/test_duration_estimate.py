"""The expected duration of an experiment from measured speed, or from a calibration of this machine before
any run has finished, over the whole queue: exact values of each step."""

import pytest

from worker.estimate import estimate, makespan, measurement, pending, planned_seconds, schedule, seconds_left


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
    assert found == {"runs_left": 3, "running": 1, "workers": 2, "measured_runs": 1, "unknown": [], "calibrated": 0,
                     "ahead": 0, "per_run_s": {1: 29.0, 2: 60.0, 3: 60.0}, "ends_s": {1: 29.0, 2: 60.0, 3: 89.0},
                     "work_s": 149.0, "remaining_s": 89.0}
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


CALIBRATION = {"start_s": 5.0, "step_s": 0.5, "tokens_per_step": 1000.0, "tokens_per_s": 2000.0,
               "eval_s_per_item": 0.02, "n_test": 300, "parameters": 521088, "trainable": 521088}
"""What cotdistill.throughput.calibrate measured for an arm's settings here, injected."""


def validating(steps=300, every=100, val_size=64, placement="after"):
    return {**config(placement=placement, steps=steps), "eval": {"every": every, "val_size": val_size}}


def test_before_any_run_has_finished_the_calibration_of_this_machine_gives_the_duration():
    """No finished run: start-up + steps x seconds per step + the validations (every 100 steps and at the
    last: 3 x 64 questions) + the 300 test questions, at the calibrated seconds per question."""
    queued = pending(1, "arm1", validating(), "queued", 0, None, CALIBRATION)
    assert seconds_left(queued, []) == 5.0 + 300 * 0.5 + 3 * 64 * 0.02 + 300 * 0.02          # 164.84 s
    assert planned_seconds(CALIBRATION, validating()) == pytest.approx(164.84)
    assert seconds_left(pending(1, "arm1", validating(every=0), "queued", 0, None, CALIBRATION), []) == \
        5.0 + 150.0 + 6.0
    halfway = pending(2, "arm1", validating(), "running", 150, {"phase": "train"}, CALIBRATION)
    assert seconds_left(halfway, []) == 150 * 0.5 + 0.5 * 3 * 64 * 0.02 + 6.0             # no start-up: it started
    training = pending(3, "arm1", validating(), "running", 290, {"phase": "train", "eta_s": 4.0}, CALIBRATION)
    assert seconds_left(training, []) == 4.0 + 6.0         # its own ETA, then the evaluation: not "ETA 0s"
    evaluating = pending(4, "arm1", validating(), "running", 300,
                         {"phase": "evaluate", "phase_done": 100, "phase_total": 300}, CALIBRATION)
    assert seconds_left(evaluating, []) == pytest.approx(4.0)             # 200 questions left at 0.02 s
    paced = {"phase": "evaluate", "phase_done": 100, "phase_total": 300, "phase_eta_s": 9.5}
    assert seconds_left(pending(5, "arm1", validating(), "running", 300, paced, CALIBRATION), []) == 9.5
    found = estimate([queued, pending(6, "arm1", validating(), "queued", 0, None, CALIBRATION)], [], workers=1)
    assert found["unknown"] == [] and found["calibrated"] == 2 and found["remaining_s"] == pytest.approx(2 * 164.84)
    assert estimate([pending(1, "arm1", validating(), "queued", 0, None)], [], workers=1)["unknown"] == \
        ["synthetic-count · tiny · after"]                                     # neither measured nor calibrated


def test_a_finished_run_of_the_arm_is_preferred_to_the_calibration():
    measured = [measurement("arm1", config(), SUMMARY, wall_s=60.0)]
    queued = pending(1, "arm1", config(steps=200), "queued", 0, None, CALIBRATION)
    assert seconds_left(queued, measured) == 6.0 + 200 * 1000 / 2000 + 4.0
    assert estimate([queued], measured, workers=1)["calibrated"] == 0


def test_runs_of_other_experiments_ahead_in_the_queue_count():
    """The queue: experiment B's 2 runs (60 s each) were queued before A's run; one worker takes them
    in order, so A's run ends after both; a run queued after A's does not delay it; a running run of
    any experiment holds its worker first."""
    measured = [measurement("arm1", config(), SUMMARY, wall_s=60.0)]      # a queued run of config(): 60 s
    b1, b2 = (pending(i, "arm1", config(), "queued", 0, None, experiment_id=2) for i in (1, 2))
    a = pending(3, "arm1", config(), "queued", 0, None, experiment_id=1)
    late = pending(4, "arm1", config(), "queued", 0, None, experiment_id=2)
    alone = estimate([a], measured, workers=1)
    assert (alone["remaining_s"], alone["ahead"]) == (60.0, 0)
    behind = estimate([b1, b2, a, late], measured, workers=1, mine={3})
    assert (behind["remaining_s"], behind["ahead"], behind["work_s"], behind["runs_left"]) == (180.0, 2, 60.0, 1)
    assert estimate([b1, b2, a, late], measured, workers=2, mine={3})["remaining_s"] == 120.0
    running = pending(5, "arm1", config(), "running", 50, {"phase": "train", "eta_s": 100.0}, experiment_id=2)
    assert estimate([running, a], measured, workers=1, mine={3})["remaining_s"] == 104.0 + 60.0
    unknown = pending(6, "b", config(placement="before"), "queued", 0, None, experiment_id=2)
    blocked = estimate([unknown, a], measured, workers=1, mine={3})
    assert blocked["remaining_s"] is None and blocked["unknown"] == ["synthetic-count · tiny · before"]
    assert estimate([a, unknown], measured, workers=1, mine={3})["remaining_s"] == 60.0   # behind it: not counted


def test_schedule_gives_each_run_its_end():
    assert schedule([5.0], [10.0, 10.0, 1.0], 2) == [5.0, 10.0, 15.0, 11.0]
    assert schedule([], [3.0], 0) == [3.0]
