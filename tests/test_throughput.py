"""This machine's speed before any run has finished (cotdistill/throughput.py): what a calibration is
filed under, how many validations a run does, and a calibration timed for real over model families."""

import pytest

from cotdistill.config import load_config
from cotdistill.throughput import calibrate, calibration_key, run_seconds, validations

CONFIG = ["data.name=synthetic", "data.options={n_train: 40, n_test: 12, steps: 2, n_choices: 3, seed: 0}",
          "train.batch_size=4", "train.warmup_steps=1", "eval.batch_size=4", "eval.max_new_tokens=8",
          "eval.n_boot=200", "eval.all_modes=false", "student.max_length=128"]


def test_a_calibration_covers_what_costs_time_and_nothing_else():
    base = load_config(None, CONFIG).to_dict()
    key = calibration_key(base, "cpu", 1)
    same = [{**base, "seed": 7}, {**base, "train": {**base["train"], "steps": 999, "lr": 0.5}},
            {**base, "eval": {**base["eval"], "every": 50, "val_size": 32, "n_boot": 10}}]
    assert {calibration_key(c, "cpu", 1) for c in same} == {key}
    assert calibration_key(base, "cpu:0", 1) == key                       # the device kind, not its index
    other = [calibration_key({**base, "train": {**base["train"], "batch_size": 8}}, "cpu", 1),
             calibration_key({**base, "data": {**base["data"], "n_test": 100}}, "cpu", 1),
             calibration_key({**base, "placement": "before"}, "cpu", 1),
             calibration_key(base, "cuda", 1), calibration_key(base, "cpu", 2)]
    assert len(set(other) | {key}) == 6 and all(len(k) == 16 for k in other)


def test_validations_every_n_steps_and_at_the_last():
    assert [validations(300, 100), validations(250, 100), validations(300, 0), validations(0, 10)] == [3, 3, 0, 0]
    cal = {"start_s": 2.0, "step_s": 0.25, "eval_s_per_item": 0.5, "n_test": 10}
    assert run_seconds(cal, steps=8, every=5, val_size=64) == 2.0 + 8 * 0.25 + 2 * 10 * 0.5 + 10 * 0.5


@pytest.mark.parametrize("family, placement", [("tiny", "after"), ("llama", "before"), ("gpt2", "none")])
def test_calibrate_times_the_run_itself_here(tmp_path, family, placement):
    """Start-up, training steps on the run's own sequences (tokens per step = their mean length x the
    batch), and the run's evaluation protocol (generation for `before`) on its test questions."""
    import torch

    from cotdistill.run import load_examples, make_builder, seed_everything, tokenizer_texts
    from cotdistill.students.loading import load_tokenizer
    from tests.test_runner import _family_student
    if family == "tiny":
        student = ["student.name=tiny", "student.vocab_size=300"]
    else:
        _family_student(family, tmp_path / "student")
        student = [f"student.name={tmp_path / 'student'}"]
    cfg = load_config(None, CONFIG + student + [f"placement={placement}"])
    torch.set_num_threads(1)
    found = calibrate(cfg, device="cpu", steps=3)
    seed_everything(cfg.seed)
    train, test = load_examples(cfg)
    builder = make_builder(cfg, load_tokenizer(cfg.student, train_texts=tokenizer_texts(train)), train)
    lengths = [len(builder.build(ex).input_ids) for ex in train]
    assert found["tokens_per_step"] == pytest.approx(sum(lengths) / len(lengths) * 4)
    assert found["eval_mode"] == ("generate" if placement == "before" else "score")
    assert (found["n_test"], found["n_train"], found["device"], found["threads"]) == (12, 40, "cpu", 1)
    assert found["start_s"] > 0 and found["step_s"] > 0 and found["eval_s_per_item"] > 0
    assert found["tokens_per_s"] == pytest.approx(found["tokens_per_step"] / found["step_s"])
    assert found["parameters"] == found["trainable"] > 0
    assert run_seconds(found, steps=100) == pytest.approx(found["start_s"] + 100 * found["step_s"]
                                                          + 12 * found["eval_s_per_item"])
