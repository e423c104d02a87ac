"""Faults in a run's files on a real worker: corrupt checkpoints are moved aside and the run resumes from
the previous good one (or from scratch), as its history says; a run whose artifacts vanish fails, naming
the path, instead of succeeding with files missing."""

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.test_training import drop_manifest, flip_byte, truncate
from tests.worker.stack import JobStack


@pytest.fixture
def embedded(tmp_path, monkeypatch):
    stack = JobStack(tmp_path, monkeypatch)
    yield stack
    stack.close()


class Crash(Exception):
    pass


def crashed_attempt(run_id: int, at_step: int) -> None:
    """What a worker killed at `at_step` leaves: the run's folder with checkpoints every 5 steps."""
    from cotdistill.config import RunConfig, from_dict
    from cotdistill.run import run
    from worker import api
    from worker.execution import run_dir

    def crash(event):
        if event["phase"] == "train" and event["step"] == at_step:
            raise Crash()

    cfg = from_dict(RunConfig, api.run_detail(run_id)["config"])
    with pytest.raises(Crash):
        run(cfg, run_dir(run_id), callback=crash, checkpoint_every=5)


def test_corrupt_checkpoints_resume_from_the_previous_good_one_or_from_scratch(embedded):
    from cotdistill.train.checkpoints import candidates
    from worker import api
    from worker.execution import run_dir
    ids = embedded.submit(n=3, steps=16)
    said = {}
    for run_id, corrupt in zip(ids, (truncate, flip_byte, None)):
        crashed_attempt(run_id, at_step=12)
        newest, older = candidates(run_dir(run_id) / "checkpoint")
        assert (newest.step, older.step) == (10, 5)
        if corrupt is not None:
            said[run_id] = [corrupt(newest)]
        else:                                           # nothing good is left: from scratch
            said[run_id] = [drop_manifest(newest), flip_byte(older)]
    embedded.start_worker("w1")
    runs = embedded.wait(ids, "succeeded", timeout=300)
    a, b, c = ids
    for run_id, resumed in ((a, 5), (b, 5), (c, 0)):
        assert runs[run_id]["summary"]["resumed_from_step"] == resumed
        assert runs[run_id]["summary"]["train_steps"] == 16
        history = [e["message"] for e in api.run_detail(run_id)["history"]]
        folder = run_dir(run_id) / "checkpoint"
        assert history[0] == (f"checkpoint at step 10 is corrupt or incomplete: {said[run_id][0]}; moved it aside "
                              f"to {folder / 'checkpoint-10.corrupt-1'}; " +
                              (f"resuming from the previous good checkpoint, step 5 ({folder / 'checkpoint-5'})"
                               if resumed else "no good checkpoint is left, so training starts from scratch"))
        if resumed:
            assert history[1:] == [f"resuming from step 5: checkpoint {folder / 'checkpoint-5'} verified"]
        else:
            assert history[1:] == [f"checkpoint at step 5 is corrupt or incomplete: {said[run_id][1]}; moved it "
                                   f"aside to {folder / 'checkpoint-5.corrupt-1'}; no good checkpoint is left, "
                                   f"so training starts from scratch"]
    shown = subprocess.run([sys.executable, "-m", "worker.cli", "show", str(c)], cwd=ROOT, env=embedded.env,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "history:" in shown.stdout and str(run_dir(c) / "checkpoint" / "checkpoint-10" / "manifest.json") \
        in shown.stdout


def test_a_run_whose_folder_or_metrics_vanish_while_training_fails_naming_the_path(embedded):
    from worker import api
    from worker.execution import run_dir
    embedded.start_worker("w1")
    [whole] = embedded.submit(steps=400, name="whole")
    embedded.wait([whole], (), until=lambda r: r["status"] == "running" and r["step"] >= 2, timeout=240)
    gone = run_dir(whole).with_name(run_dir(whole).name + ".gone")
    os.rename(run_dir(whole), gone)        # at once: rmtree raced the run's next checkpoint file
    shutil.rmtree(gone, ignore_errors=True)
    embedded.wait([whole], "failed", timeout=120)
    error = api.run_detail(whole)["error"]
    assert error.startswith(f"the run folder {run_dir(whole)} vanished while the run was in progress (checkpoint ")
    assert error.endswith("could not be written): run it again") and "\n" not in error

    [part] = embedded.submit(steps=30, name="part")
    embedded.wait([part], (), until=lambda r: r["status"] == "running" and r["step"] >= 2, timeout=240)
    (run_dir(part) / "metrics.jsonl").unlink()
    embedded.wait([part], "failed", timeout=120)
    assert api.run_detail(part)["error"] == \
        f"{run_dir(part) / 'metrics.jsonl'} vanished while the run was in progress: run it again"


@pytest.mark.parametrize("vanish", ["predictions.jsonl", "summary.json"])
def test_a_run_whose_results_vanish_before_it_is_recorded_fails_naming_the_file(embedded, monkeypatch, vanish):
    """The core finished the folder; the file goes before the worker records the run (executed in
    this process, so that the deletion lands exactly there)."""
    from cotdistill import run as runner
    from worker import api
    from worker.db import make_engine, session_factory
    from worker.execution import execute, run_dir
    real_run = runner.run

    def run_then_lose_a_file(cfg, out, **kwargs):
        summary = real_run(cfg, out, **kwargs)
        (out / vanish).unlink()
        return summary

    monkeypatch.setattr(runner, "run", run_then_lose_a_file)
    [run_id] = embedded.submit(steps=4)
    outcome = execute(session_factory(make_engine(embedded.database_url)), run_id, "w:test")
    expected = f"{run_dir(run_id) / vanish} vanished while the run was in progress: run it again"
    assert outcome == f"failed: {expected}"
    detail = api.run_detail(run_id)
    assert detail["status"] == "failed" and detail["error"] == expected
    assert api.predictions([run_id]) == []                  # nothing recorded as a result
