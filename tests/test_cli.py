"""The CLI end to end, as a user runs it: real subprocesses, real files."""

import json
import os
import subprocess
import sys

import yaml

from tests.conftest import ROOT

SMALL = ["data.options.n_train=200", "data.options.n_test=40", "train.steps=6", "train.log_every=2",
         "train.batch_size=8", "student.vocab_size=300"]


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "cotdistill.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=600)


def test_run_writes_the_results_folder_and_reuses_it(tmp_path):
    out = tmp_path / "run"
    args = ["run", "configs/synthetic-demo.yaml", *SMALL, "perturbation.kind=shuffle", "seed=2", "--out", str(out)]
    p = cli(*args)
    assert p.returncode == 0, p.stderr
    assert "accuracy" in p.stdout and "on 40 test examples" in p.stdout
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["perturbation"]["kind"] == "shuffle" and config["seed"] == 2
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [2, 4, 6]
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(predictions) == 40 and all(set(p) >= {"example_id", "predicted", "correct", "scores"}
                                          for p in predictions)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n"] == 40 and summary["train_steps"] == 6 and summary["eval_mode"] == "score"
    assert summary["accuracy"] == sum(p["correct"] for p in predictions) / 40
    assert summary["accuracy_low"] <= summary["accuracy"] <= summary["accuracy_high"]
    assert (out / "model" / "config.json").exists() and not (out / "checkpoint").exists()
    again = cli(*args)
    assert again.returncode == 0 and "already holds this finished run" in again.stdout


def test_run_refuses_a_folder_of_another_config(tmp_path):
    out = tmp_path / "run"
    assert cli("run", "configs/synthetic-demo.yaml", *SMALL, "--out", str(out)).returncode == 0
    (out / "summary.json").unlink()
    p = cli("run", "configs/synthetic-demo.yaml", *SMALL, "seed=5", "--out", str(out))
    assert p.returncode == 2 and "holds a run of another configuration" in p.stderr


def test_bad_config_gives_a_clear_error():
    p = cli("run", "configs/synthetic-demo.yaml", "train.stepz=3")
    assert p.returncode == 2 and "unknown key(s) train.stepz" in p.stderr and "Traceback" not in p.stderr


def test_preview_marks_supervised_tokens():
    p = cli("preview", "configs/cqa-after.yaml", "--n", "2", "--placements", "before,after",
            "--perturbations", "none,shuffle", "--no-color")
    assert p.returncode == 0, p.stderr
    blocks = [b for b in p.stdout.split("── ")[1:]]
    assert len(blocks) == 2 * 2 * 2
    for block in blocks:
        assert "Answer:«" in block                     # supervision starts right after the prompt
        assert block.count("«") == 1 and block.count("»") == 1
    assert "Explanation:" in blocks[4] and "So the answer is" in blocks[0]


def test_datasets_lists_what_loads():
    p = cli("datasets")
    assert p.returncode == 0, p.stderr
    lines = {line.split()[0]: line for line in p.stdout.splitlines()[1:] if line.startswith("  ")}
    assert "train 9,741" in lines["commonsenseqa-dsbs"] and "test 1,221" in lines["commonsenseqa-dsbs"]
    assert "openbookqa-tinyllm" in lines and "svamp-dsbs" in lines and "synthetic" in lines


def test_datasets_says_where_data_is_missing(tmp_path):
    p = cli("datasets", "--data-dir", str(tmp_path))
    assert p.returncode == 0
    assert "unavailable" in p.stdout and "commonsenseqa-dsbs" in p.stdout
