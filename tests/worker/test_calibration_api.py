"""Before any run has finished, the plan asks a worker to time this machine (cotdistill/throughput.py)
and then gives a duration and the disk a run needs; the experiment's estimate counts the runs of other
experiments queued ahead of it. A real worker subprocess on the embedded stack."""

import time

import pytest

from tests.worker.stack import BASE, JobStack


def test_the_plan_asks_a_worker_to_time_this_machine_then_knows_the_duration(tmp_path, monkeypatch):
    from cotdistill.estimate import run_disk
    from worker import api
    from worker.api.estimate import cached_calibration
    from worker.estimate import planned_seconds
    from worker.experiments import Matrix, expand
    stack = JobStack(tmp_path, monkeypatch)
    matrix = {"name": "timed", "base": BASE, "factors": {"seed": [0, 1]}}
    config = expand(Matrix("timed", BASE, matrix["factors"]))[0][1].to_dict()
    before = api.plan_matrix(matrix)["estimate"]               # no worker yet: asked, nobody answers
    assert before["remaining_s"] is None and before["measuring"] == ["synthetic-count · tiny · after"]
    stack.start_worker("w1")
    try:
        deadline = time.monotonic() + 120
        while (plan := api.plan_matrix(matrix))["estimate"]["remaining_s"] is None:
            assert time.monotonic() < deadline, (plan["estimate"], stack.logs()[-4000:])
            time.sleep(0.5)
        calibration = cached_calibration(config)
        assert calibration["n_test"] == 12 and calibration["threads"] == 1 and calibration["eval_mode"] == "score"
        run_s = planned_seconds(calibration, config)
        assert plan["estimate"]["remaining_s"] == pytest.approx(2 * run_s)        # one worker, one run at a time
        assert plan["estimate"]["calibrated"] == 2 and plan["estimate"]["measuring"] == []
        assert plan["disk"] == {**run_disk(calibration["parameters"], calibration["trainable"]), "student": "tiny"}
        assert plan["disk"]["checkpoint"] == 12 * calibration["parameters"]          # float32 weights + AdamW
        stack.kill_worker("w1")                                   # the queue stays as it is from here
        first = api.submit_matrix({**matrix, "name": "first"})["queued"]
        second = api.submit_matrix({**matrix, "name": "second", "factors": {"seed": [2]}})["queued"]
        assert len(first) == 2 and len(second) == 1
        mine = api.experiment_estimate("second")
        assert mine["ahead"] == 2 and mine["runs_left"] == 1       # the first experiment's 2 runs come first
        assert mine["work_s"] == pytest.approx(run_s)
        if mine["workers"] == 1:                                   # the killed worker not yet stale: behind 2 runs
            assert mine["remaining_s"] == pytest.approx(3 * run_s)
        assert api.experiment_estimate(None)["work_s"] == pytest.approx(3 * run_s)
        behind = api.plan_matrix({**matrix, "name": "third", "factors": {"seed": [3]}})["estimate"]
        assert behind["ahead"] == 3 and behind["runs_left"] == 1
    finally:
        stack.close()
