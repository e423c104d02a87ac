"""This machine's speed for a run before any run has finished: a few training steps and a few test
questions of the run itself, timed.

    found = calibrate(cfg, device="cpu")          # {tokens_per_step, tokens_per_s, eval_s_per_item, ...}
    key = calibration_key(cfg.to_dict(), "cpu", threads=1)
    run_seconds(found, steps=300, every=0, val_size=64)     # start-up + training + evaluation

`calibrate` does what the run would do at its start, timed: it loads the data and the student
(start-up), builds the training sequences and trains a throw-away copy of the student for CALIBRATION_STEPS
optimizer steps on the run's first batches (the first step is warm-up and is left out of the rate),
then evaluates up to two evaluation batches of test questions by the run's own protocol (scoring or
generation; with two batches the first is warm-up). It writes nothing. The result is what a finished
run's summary says about speed (training tokens per step and per second, evaluation seconds per
question, start-up), so worker/estimate.py uses it exactly where a finished run of the arm would be
used, until one has finished.

What a run costs depends on the student, the data (sequence lengths, test questions), the batch, the
evaluation settings, the device and the CPU threads, not on the seed, the learning rate or the number
of steps: `calibration_key` covers exactly those, so one calibration serves every seed and step count
of an arm. A generation-evaluated arm is timed on the untrained student, which may write up to
eval.max_new_tokens where the trained one stops earlier: an upper bound.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time

from cotdistill.config import RunConfig

CALIBRATION_STEPS = 3
"""Optimizer steps timed (the first left out: warm-up)."""
CALIBRATION_VERSION = 1
"""Bumped when what a calibration measures changes: older cached calibrations are not used."""
SEQUENCE_SAMPLE = 256
"""Training sequences whose mean length gives the tokens per step."""
UNTIMED_TRAIN = ("steps", "lr", "warmup_steps", "log_every", "checkpoint_every", "clip", "weight_decay",
                 "loss_normalization", "min_lr_ratio")
UNTIMED_EVAL = ("n_boot", "every", "val_size")


def calibration_key(config: dict, device: str, threads: int) -> str:
    """16 hex digits naming what a run of `config` costs on `device` with `threads` CPU threads: its
    data, student, placement, perturbation, batch, precision and evaluation settings (not its seed,
    steps or learning rate; see the module docstring)."""
    cfg = json.loads(json.dumps(config, default=str))
    for key in ("seed", "name", "tracking", "rationale_weight"):
        cfg.pop(key, None)
    for key in UNTIMED_TRAIN:
        (cfg.get("train") or {}).pop(key, None)
    for key in UNTIMED_EVAL:
        (cfg.get("eval") or {}).pop(key, None)
    text = json.dumps({"config": cfg, "device": device.split(":")[0], "threads": int(threads),
                       "version": CALIBRATION_VERSION}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def calibrate(cfg: RunConfig, *, device: str | None = None, steps: int = CALIBRATION_STEPS) -> dict:
    """Time the start of a run of `cfg` here (see the module docstring): start_s, tokens_per_step,
    tokens_per_s, step_s, eval_s_per_item, eval_mode, n_test, n_train, parameters, trainable, device,
    threads, seconds (what the calibration itself took)."""
    import torch

    from cotdistill.evaluate.evaluation import evaluate, scoring_options
    from cotdistill.students.lora import parameter_counts, prepare_for_training
    from cotdistill.run import config_scores, load_examples, make_builder, seed_everything, tokenizer_texts
    from cotdistill.students.loading import load_student
    from cotdistill.train.loop import train

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    t0 = time.perf_counter()
    seed_everything(cfg.seed)
    train_ex, test_ex = load_examples(cfg)
    student = load_student(cfg.student, train_texts=tokenizer_texts(train_ex))
    builder = make_builder(cfg, student.tokenizer, train_ex, config_scores(cfg))
    start_s = time.perf_counter() - t0
    per_step = cfg.train.batch_size * cfg.train.grad_accum
    sample = [builder.build(ex) for ex in train_ex[:max(SEQUENCE_SAMPLE, per_step * steps)]]
    sample = [s for s in sample if len(s.input_ids) > 1] or sample
    tokens_per_step = sum(len(s.input_ids) for s in sample) / len(sample) * per_step

    model = prepare_for_training(student.model, cfg.student)
    counts = parameter_counts(model)
    ticks: list[float] = []
    train_cfg = dataclasses.replace(cfg.train, steps=steps, warmup_steps=min(cfg.train.warmup_steps, steps),
                                    checkpoint_every=0, log_every=1)
    train(model, sample[:per_step * steps], train_cfg, seed=cfg.seed, device=device,
          pad_id=student.tokenizer.pad_token_id, callback=lambda e: ticks.append(time.perf_counter()))
    step_s = (ticks[-1] - ticks[0]) / (len(ticks) - 1) if len(ticks) > 1 else ticks[0] - t0

    mode = cfg.eval_mode if test_ex[0].kind != "numeric" or cfg.eval.mode != "auto" else "generate"
    batch = cfg.eval.batch_size
    items = test_ex[:min(len(test_ex), 2 * batch)]
    marks: list[tuple[int, float]] = []
    model.eval()
    evaluate(model, builder, items, mode=mode, batch_size=batch, max_new_tokens=cfg.eval.max_new_tokens,
             device=device, progress=lambda done, total: marks.append((done, time.perf_counter())),
             **scoring_options(cfg.eval))
    first = min(batch, len(items))               # the first batch is warm-up when there are two
    ends = [t for done, t in marks if done == first]
    if len(items) > first and ends:
        eval_s_per_item = (marks[-1][1] - ends[0]) / (len(items) - first)
    else:
        eval_s_per_item = (marks[-1][1] - marks[0][1]) / max(1, len(items))
    return {"start_s": start_s, "tokens_per_step": tokens_per_step, "step_s": step_s,
            "tokens_per_s": tokens_per_step / step_s if step_s > 0 else None,
            "eval_s_per_item": eval_s_per_item, "eval_mode": mode, "n_test": len(test_ex),
            "n_train": len(train_ex), "parameters": counts["parameters"], "trainable": counts["trainable"],
            "device": str(device), "threads": torch.get_num_threads(),
            "seconds": time.perf_counter() - t0, "version": CALIBRATION_VERSION}


def validations(steps: int, every: int) -> int:
    """How many times a run validates: every `every` steps and at the last step (training.train)."""
    if not every or steps <= 0:
        return 0
    return steps // every + (1 if steps % every else 0)


def run_seconds(calibration: dict, *, steps: int, every: int = 0, val_size: int = 64) -> float:
    """A whole run's seconds from its calibration: start-up, `steps` training steps, its validations
    (val_size questions each, at most the test set) and the evaluation of the test set."""
    per_item = calibration["eval_s_per_item"]
    validation = validations(steps, every) * min(val_size, calibration["n_test"]) * per_item
    return (calibration["start_s"] + steps * calibration["step_s"] + validation
            + calibration["n_test"] * per_item)
