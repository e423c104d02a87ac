"""The run entry point on real data with real students (small budgets, CPU)."""

import json

import pytest

from cotdistill.config import load_config
from cotdistill.runner import RunError, load_examples, run
from tests.conftest import ROOT


def test_smollm2_run_on_commonsenseqa(tmp_path):
    """The offline pretrained student: converted from the wheel's GGUF, trained, scored."""
    cfg = load_config(ROOT / "configs" / "cqa-after-smollm2-cpu.yaml",
                      ["data.n_train=16", "data.n_test=12", "train.steps=2", "train.batch_size=4",
                       "eval.batch_size=4"])
    summary = run(cfg, tmp_path / "run")
    assert summary["student"] == "smollm2-135m" and summary["n"] == 12 and summary["train_steps"] == 2
    assert 0 <= summary["accuracy_low"] <= summary["accuracy"] <= summary["accuracy_high"] <= 1
    rows = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert all(set(r["scores"]) == {"a", "b", "c", "d", "e"} for r in rows)
    assert all(r["scores"][r["predicted"]] == max(r["scores"].values()) for r in rows)
    assert all(list(r["by_mode"]) == ["letter", "text", "calibrated"] for r in rows)   # eval.all_modes default
    assert summary["scoring"] == "letter" and summary["accuracy"] == summary["accuracy_by_mode"]["letter"]
    assert summary["collapsed"] == (summary["collapse_reason"] is not None)


@pytest.mark.parametrize("config,mode", [("svamp-before.yaml", "generate"), ("strategyqa-after.yaml", "score"),
                                         ("quarel-none.yaml", "score")])
def test_other_shapes_of_data_run_end_to_end(tmp_path, config, mode):
    cfg = load_config(ROOT / "configs" / config,
                      ["data.n_train=64", "data.n_test=16", "train.steps=3", "student.size=tiny",
                       "student.vocab_size=400", "eval.max_new_tokens=24"])
    summary = run(cfg, tmp_path / "run")
    assert summary["eval_mode"] == mode and summary["n"] == 16
    rows = [json.loads(line) for line in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 16
    if mode == "generate":
        assert all(isinstance(r["generated"], str) for r in rows)


def test_same_training_examples_for_every_placement():
    ids = {}
    for placement in ("none", "before", "after"):
        cfg = load_config(ROOT / "configs" / "svamp-after.yaml", [f"placement={placement}"])
        ids[placement] = [ex.id for ex in load_examples(cfg)[0]]
    assert ids["none"] == ids["before"] == ids["after"]
    assert len(ids["none"]) == 789                    # 11 SVAMP items have no usable rationale


def test_placement_without_rationales_is_refused():
    cfg = load_config(ROOT / "configs" / "quarel-after.yaml", ["data.train_split=dev"])
    with pytest.raises(RunError, match="needs rationales"):
        load_examples(cfg)


def test_teacher_correct_filter():
    cfg = load_config(ROOT / "configs" / "cqa-after.yaml", ["data.rationale_filter=teacher_correct",
                                                             "data.n_train=null"])
    train, _ = load_examples(cfg)
    assert all(ex.teacher_correct for ex in train) and len(train) == 7341


class Crash(Exception):
    pass


def test_interrupted_run_resumes_from_its_checkpoint(tmp_path):
    cfg = load_config(ROOT / "configs" / "synthetic-demo.yaml",
                      ["data.options.n_train=100", "data.options.n_test=20", "train.steps=6",
                       "train.checkpoint_every=2", "train.log_every=1", "train.batch_size=8",
                       "student.vocab_size=300"])

    def crash(event):
        if event["phase"] == "train" and event["step"] == 5:
            raise Crash()

    with pytest.raises(Crash):
        run(cfg, tmp_path / "run", callback=crash)
    assert (tmp_path / "run" / "checkpoint" / "checkpoint.pt").exists()
    summary = run(cfg, tmp_path / "run")
    assert summary["resumed_from_step"] == 4 and summary["train_steps"] == 6
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]
