"""Before launch: `cotdistill submit --dry-run` and api.estimate_matrix (memory per cell, fits, GPU-hours)."""

import os

import pytest
import yaml

from cotdistill.config import StudentConfig
from cotdistill.estimate import GIB, cell_memory, model_shape
from tests.worker.stack import BASE
from tests.worker.test_job_commands import cli

MATRIX = {"name": "sizes", "base": BASE, "factors": {"student.lora": [None, {"r": 4}], "seed": [0]}}
TOKENS = 10 * 8 * 1 * 64                               # BASE: steps x batch_size x grad_accum x max_length


def test_dry_run_lists_memory_fits_and_gpu_hours_without_a_database(tmp_path):
    env = {**os.environ, "COTDISTILL_HOME": str(tmp_path), "COTDISTILL_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}"}
    matrix = tmp_path / "m.yaml"
    matrix.write_text(yaml.safe_dump(MATRIX))
    out = cli(env)("submit", str(matrix), "--dry-run", "--gpu-gib", "1", "--tokens-per-s", "128")
    assert out.returncode == 0, out.stderr
    assert not (tmp_path / "c.db").exists()                            # nothing queued, no database made
    lines = out.stdout.splitlines()
    lines = lines[next(i for i, line in enumerate(lines) if line.startswith("matrix ")):]   # after the cell list
    assert lines[0].startswith("matrix 'sizes': 2 cell(s), planned for 1 GiB GPUs (cuda;")
    full, lora = lines[2], lines[3]
    assert full.startswith("seed=0, lora=None ") and lora.startswith("seed=0, lora={'r': 4}")   # keys sorted by the YAML dump
    assert " yes " in full and f"{2 * TOKENS / 128 / 3600 / 2:.3f}" in full
    assert "2 cell(s) fit, 0 do not, 0 unknown" in out.stdout
    assert f"GPU-hours (training, upper bound: every sequence at max_length): {2 * TOKENS / 128 / 3600:.3f} (given)" \
        in out.stdout
    small = cli(env)("submit", str(matrix), "--dry-run", "--gpu-gib", "0.001")
    assert "0 cell(s) fit, 2 do not" in small.stdout and " NO " in small.stdout
    assert "GPU-hours unknown for 2 cell(s)" in small.stdout and "--tokens-per-s" in small.stdout


def test_estimate_matrix_numbers_and_measured_tokens_per_s(tmp_path, monkeypatch):
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path))
    monkeypatch.setenv("COTDISTILL_DATABASE_URL", f"sqlite:///{tmp_path / 'c.db'}")
    from worker import api
    from worker.db import database_url, make_engine, session_factory, upgrade
    from worker.models import Run
    upgrade(database_url())
    api.submit_matrix({"name": "old", "base": BASE, "factors": {"seed": [0, 1, 2, 3]}})
    engine = make_engine(database_url())
    with session_factory(engine)() as s:                    # three finished GPU runs and one CPU run
        for run_id, rate, device in ((1, 100.0, "cuda:0"), (2, 300.0, "cuda"), (3, 200.0, "cuda:1"), (4, 9.0, "cpu")):
            r = s.get(Run, run_id)
            r.status, r.summary = "succeeded", {"tokens_per_s": rate, "device": device}
        s.commit()
    engine.dispose()
    e = api.estimate_matrix(MATRIX, gpu_gib=1)
    full, lora = e["cells"]
    shape = model_shape(StudentConfig(**BASE["student"]))
    expected = cell_memory(shape, batch_size=8, max_length=64, autocast_bf16=True)
    assert full["memory"] == expected and full["total_gib"] == expected["total_bytes"] / GIB
    assert lora["trainable"] < full["trainable"] == full["parameters"] == shape.parameters
    assert lora["memory"]["optimizer"] == 8 * lora["trainable"] and lora["memory"]["weights"] == full["memory"]["weights"]
    assert full["tokens_per_s"] == 200.0                      # the median of the three cuda runs
    assert full["tokens_per_s_source"] == "measured: median of 3 succeeded cuda run(s) of tiny"
    assert e["gpu_hours"] == pytest.approx(2 * TOKENS / 200 / 3600)
    assert api.measured_tokens_per_s(BASE["student"], "cpu")["tokens_per_s"] == 9.0
    assert api.measured_tokens_per_s({**BASE["student"], "size": "base"}) is None     # another tiny size


def test_a_student_whose_config_cannot_be_read_is_reported_not_guessed(tmp_path, monkeypatch):
    monkeypatch.setenv("COTDISTILL_HOME", str(tmp_path))
    from worker import api
    m = {"name": "hub", "base": {**BASE, "student": {"name": "nobody/no-such-model"}}, "factors": {"seed": [0]}}
    e = api.estimate_matrix(m, gpu_gib=80, tokens_per_s=1000)
    assert e["unknown"] == 1 and e["gpu_hours"] is None
    assert e["cells"][0]["error"].startswith("could not read the config of student 'nobody/no-such-model' here")
