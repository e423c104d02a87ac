"""Training throughput: our trainer vs transformers.Trainer on the same student, data and steps.

    python bench/train_throughput.py [--steps 40] [--batch-size 16] [--student tiny]

Both start from the same initial weights and train on the same CommonsenseQA `after` sequences
(same loss mask) for the same number of optimizer steps at the same batch size and learning-rate
schedule. Trainer runs with its default settings and pads to the longest sequence of each batch
(DataCollatorForSeq2Seq, padding="longest"). Printed: real (non-padding) tokens/s of both and their
ratio, the final training loss of both (mean of the last 10 steps) and a common held-out loss, the
machine's measured matmul peak and our model-FLOPs utilization. Goal: ratio >= 1.3, loss within 2%.

    python bench/train_throughput.py --ddp [--steps 40]

DDP 2 x gloo vs 1 process: the same run (cotdistill.run.run, same global batch) as one process and
as a 2-process torchrun job (train.distributed=ddp, train.devices=2); printed: training tokens/s of
both and their ratio, wall time with process start-up, and the final losses (equal to float order
without dropout; the tiny student has dropout 0.1, and each rank draws its own masks).
On a CPU the two processes share its cores, so expect a ratio near or below 1: the row is there to
measure the cost of the gradient all-reduce, and on GPUs the scaling.
Then packed vs padded (train.packing true / false, from the same initial weights and the same batches),
once with length-grouped batches (the default: little padding to remove) and once with random ones;
the two final losses agree to rounding.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time

from common import cqa_setup, device, machine, matmul_peak, sync, train_flops_per_token

import torch  # noqa: E402


def our_run(model, seqs, cfg, dev):
    from cotdistill.train.loop import train
    losses = []
    sync(dev)
    t0 = time.perf_counter()
    result = train(model, seqs, cfg.train, seed=cfg.seed, pad_id=model.config.pad_token_id, device=dev,
                   callback=lambda e: losses.append(e["loss"]))
    sync(dev)
    return result.tokens / (time.perf_counter() - t0), sum(losses[-10:]) / len(losses[-10:])


def packing_runs(model, init, seqs, cfg, dev, group_by_length: bool) -> tuple[float, float, float, float]:
    """(padded tokens/s, packed tokens/s, padded loss, packed loss) from the same initial weights."""
    import dataclasses
    out = []
    for packing in (False, True):
        model.load_state_dict(init)
        model.train()
        run_cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, packing=packing,
                                                                     group_by_length=group_by_length))
        out.append(our_run(model, seqs, run_cfg, dev))
    (pad_tps, pad_loss), (pack_tps, pack_loss) = out
    return pad_tps, pack_tps, pad_loss, pack_loss


def trainer_run(model, seqs, cfg, dev, tokenizer):
    from datasets import Dataset
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

    rows = [{"input_ids": s.input_ids, "attention_mask": [1] * len(s), "labels": s.labels} for s in seqs]
    losses, tokens = [], [0]

    class Count(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                losses.append(logs["loss"])

    class CountingCollator(DataCollatorForSeq2Seq):
        def __call__(self, features, return_tensors=None):
            batch = super().__call__(features, return_tensors)
            tokens[0] += int(batch["attention_mask"].sum())
            return batch

    t = cfg.train
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, per_device_train_batch_size=t.batch_size,
                                 gradient_accumulation_steps=t.grad_accum, max_steps=t.steps,
                                 learning_rate=t.lr, weight_decay=t.weight_decay, warmup_steps=t.warmup_steps,
                                 lr_scheduler_type="cosine", max_grad_norm=t.clip, logging_steps=1,
                                 save_strategy="no", report_to=[], seed=cfg.seed, use_cpu=dev == "cpu",
                                 bf16=dev == "cuda", disable_tqdm=True)
        collator = CountingCollator(tokenizer, padding="longest", label_pad_token_id=-100)
        trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                          data_collator=collator, callbacks=[Count()])
        sync(dev)
        t0 = time.perf_counter()
        trainer.train()
        sync(dev)
        return tokens[0] / (time.perf_counter() - t0), sum(losses[-10:]) / len(losses[-10:])


def heldout_loss(model, seqs, dev, pad) -> float:
    from cotdistill.train.loop import collate
    from cotdistill.train.loss import weighted_loss_sum
    model.to(dev).eval()
    total = weight = 0.0
    with torch.no_grad():
        for i in range(0, len(seqs), 32):
            b = {k: v.to(dev) for k, v in collate(seqs[i:i + 32], pad).items()}
            total += weighted_loss_sum(model, b).item()
            weight += b["weights"][:, 1:].sum().item()
    return total / weight


def ddp_vs_single(args) -> None:
    import dataclasses
    from pathlib import Path
    from common import ROOT
    from cotdistill.config import load_config
    from cotdistill.run import run
    cfg = load_config(ROOT / "configs" / "cqa-after.yaml",
                      [f"train.steps={args.steps}", f"train.batch_size={args.batch_size}", "train.warmup_steps=5",
                       f"student.size={args.size}", "data.n_train=2000", "data.n_test=32", "eval.n_boot=100"])
    ddp = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, distributed="ddp", devices=2))
    results = {}
    with tempfile.TemporaryDirectory() as out:
        for label, c in (("1 process", cfg), ("DDP 2 x gloo", ddp)):
            t0 = time.perf_counter()
            summary = run(c, Path(out) / label.replace(" ", "_"), device="cpu")
            results[label] = (summary["tokens_per_s"], time.perf_counter() - t0, summary["final_loss"])
    print(f"machine: {machine()}")
    for label, (tps, wall, loss) in results.items():
        print(f"{label:<13} {tps:10.0f} training tokens/s   wall {wall:6.1f} s (with start-up, eval)   "
              f"final loss {loss:.5f}")
    one, two = results["1 process"], results["DDP 2 x gloo"]
    print(f"ratio (DDP 2 x gloo / 1 process): {two[0] / one[0]:.2f}x   final loss difference {abs(two[2] - one[2]):.2e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--student", default="tiny", help="tiny | smollm2-135m | a hub id")
    ap.add_argument("--size", default="small")
    ap.add_argument("--ddp", action="store_true", help="DDP 2 x gloo vs 1 process instead (CPU).")
    args = ap.parse_args()
    if args.ddp:
        return ddp_vs_single(args)
    dev = device()
    overrides = [f"train.steps={args.steps}", f"train.batch_size={args.batch_size}", "train.warmup_steps=5",
                 f"student.name={args.student}", f"student.size={args.size}", "data.n_train=2000",
                 "data.n_test=256"] + (["train.lr=5e-5"] if args.student != "tiny" else [])
    cfg, student, builder, train, test = cqa_setup(overrides)
    seqs = [builder.build(ex) for ex in train]
    heldout = [builder.build(ex) for ex in test]       # same format, never trained on
    init = copy.deepcopy(student.model.state_dict())
    pad = student.tokenizer.pad_token_id          # students always have one (eos for hub models)

    ours_tps, ours_loss = our_run(student.model, seqs, cfg, dev)
    ours_held = heldout_loss(student.model, heldout, dev, pad)
    student.model.load_state_dict(init)
    student.model.train()
    hf_tps, hf_loss = trainer_run(student.model, seqs, cfg, dev, student.tokenizer)
    hf_held = heldout_loss(student.model, heldout, dev, pad)

    packing = {grouped: packing_runs(student.model, init, seqs, cfg, dev, grouped) for grouped in (True, False)}

    mean_len = sum(len(s) for s in seqs) / len(seqs)
    peak = matmul_peak(dev)
    supervised = sum(sum(w > 0 for w in s.weights) for s in seqs) / sum(len(s) for s in seqs)
    mfu = ours_tps * train_flops_per_token(student.model, mean_len, supervised) / peak
    print(f"machine: {machine()}")
    print(f"student: {student.name} ({sum(p.numel() for p in student.model.parameters()) / 1e6:.1f}M params), "
          f"CQA after, {len(seqs)} sequences (mean {mean_len:.0f} tokens), {args.steps} steps x batch {args.batch_size}")
    print(f"ours:    {ours_tps:10.0f} tokens/s   final train loss {ours_loss:.4f}   held-out loss {ours_held:.4f}")
    print(f"Trainer: {hf_tps:10.0f} tokens/s   final train loss {hf_loss:.4f}   held-out loss {hf_held:.4f}")
    print(f"ratio (ours / Trainer): {ours_tps / hf_tps:.2f}x   (goal >= 1.3)")
    print(f"held-out loss difference: {100 * (ours_held - hf_held) / hf_held:+.2f}%   (goal within 2%)")
    print(f"matmul peak: {peak / 1e9:.1f} GFLOP/s   our model-FLOPs utilization: {100 * mfu:.1f}%")
    for grouped, (pad_tps, pack_tps, pad_loss, pack_loss) in packing.items():
        print(f"packed vs padded ({'length-grouped' if grouped else 'random'} batches): padded {pad_tps:10.0f} "
              f"tokens/s, packed {pack_tps:10.0f} tokens/s, ratio {pack_tps / pad_tps:.2f}x   final loss "
              f"{pad_loss:.4f} vs {pack_loss:.4f}")


if __name__ == "__main__":
    main()
