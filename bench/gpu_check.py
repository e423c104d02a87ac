"""The GPU check: one table of throughput, utilization and evaluation speed for a lent GPU.

    bench/gpu_check.sh                  # on one H100/H200: at most 8 minutes, nothing from the hub
    bench/gpu_check.sh --cpu --tiny     # the same code on CPU with a 2-layer model (a smoke test)

Students: random-init GPT-2-small (12x768) and GPT-2-medium (24x1024) shapes built from GPT2Config
(vocabulary 50,257). Training data: seeded random token sequences of 128-512 tokens whose last quarter
is supervised (the shape of an `after` target; nothing to download). Evaluation: the built-in
synthetic testbed (`synthetic-count`, generated) with a tokenizer trained on it, on a random-init
model of the same shape and that tokenizer's vocabulary (speed only; its accuracy means nothing).
Rows per shape:
- ours: bf16 tokens/s of cotdistill's trainer (real tokens) and MFU against the bf16 matmul peak
  measured here (8192^3 matmuls), goal >= 40% for the medium shape;
- Trainer: transformers.Trainer on the same sequences, steps, batch and schedule; ours/Trainer
  goal >= 1.3x;
- packed / padded: only where the trainer has `train.packing` (otherwise the row says so);
- eval: test examples/s of score mode vs generate mode on the trained model.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import time

from common import matmul_peak, sync, train_flops_per_token

import torch  # noqa: E402

from train_throughput import our_run, trainer_run  # noqa: E402

SHAPES = {"gpt2-small": (12, 768, 12), "gpt2-medium": (24, 1024, 16), "tiny": (2, 64, 2)}


def testbed(n_train: int, n_test: int, max_length: int):
    from cotdistill.config import load_config
    from cotdistill.run import load_examples, make_builder, seed_everything, tokenizer_texts
    from cotdistill.students.loading import train_tokenizer
    cfg = load_config(None, ["data.name=synthetic-count", f"data.options.n_train={n_train}",
                             f"data.options.n_test={n_test}", "placement=after", "student.vocab_size=4096",
                             f"student.max_length={max_length}", "eval.n_boot=100"])
    seed_everything(0)
    train, test = load_examples(cfg)
    tok = train_tokenizer(tokenizer_texts(train), cfg.student.vocab_size)
    return cfg, tok, make_builder(cfg, tok, train), train, test


def random_sequences(n: int, low: int, high: int, vocab: int, seed: int = 0):
    """n sequences of low..high random tokens; the last quarter of each is supervised."""
    import numpy as np
    from cotdistill.sequences.placements import Segment, TrainingSequence
    rng = np.random.default_rng(seed)
    seqs = []
    for i in range(n):
        ids = rng.integers(4, vocab, size=int(rng.integers(low, high + 1))).tolist()
        cut = len(ids) * 3 // 4
        seqs.append(TrainingSequence(f"r{i}", [Segment("prompt", ids[:cut], 0.0), Segment("label", ids[cut:], 1.0)]))
    return seqs


def build(shape: str, tok, max_length: int, vocab: int | None = None):
    from transformers import GPT2Config, GPT2LMHeadModel
    layers, width, heads = SHAPES[shape]
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=vocab or len(tok), n_positions=max(1024, 2 * max_length), n_embd=width,
                        n_layer=layers, n_head=heads, bos_token_id=tok.eos_token_id,
                        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return GPT2LMHeadModel(config)


def eval_speed(model, builder, test, mode: str, dev: str) -> float:
    from cotdistill.evaluate.evaluation import evaluate
    sync(dev)
    t0 = time.perf_counter()
    evaluate(model, builder, test, mode=mode, batch_size=32, max_new_tokens=32, device=dev)
    sync(dev)
    return len(test) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", action="store_true", help="Run on CPU (smoke test).")
    ap.add_argument("--tiny", action="store_true", help="Only a 2-layer shape, few steps (smoke test).")
    ap.add_argument("--steps", type=int, default=None)
    args = ap.parse_args()
    dev = "cpu" if args.cpu or not torch.cuda.is_available() else "cuda"
    shapes = ["tiny"] if args.tiny else ["gpt2-small", "gpt2-medium"]
    steps = args.steps or (3 if args.tiny else 30)
    batch, (low, high), vocab = (4, (16, 64), 1000) if args.tiny else (32, (128, 512), 50257)
    cfg, tok, builder, train, test = testbed(64 if args.tiny else 2000, 8 if args.tiny else 256, high)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(
        cfg.train, steps=steps, batch_size=batch, warmup_steps=min(5, steps), lr=3e-4, log_every=1))
    seqs = random_sequences(batch * steps, low, high, vocab)
    if dev == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
    peak = matmul_peak(dev, n=256 if args.tiny else 8192, repeats=3 if args.tiny else 20)
    mean_len = sum(len(s) for s in seqs) / len(seqs)
    supervised = sum(sum(w > 0 for w in s.weights) for s in seqs) / sum(len(s) for s in seqs)
    rows = []
    for shape in shapes:
        model = build(shape, tok, high, vocab)
        init = copy.deepcopy(model.state_dict())
        flops = train_flops_per_token(model, mean_len, supervised)
        ours_tps, ours_loss = our_run(model, seqs, cfg, dev)
        rows.append((shape, "ours", ours_tps, 100 * ours_tps * flops / peak, ours_loss, ""))
        if "packing" in {f.name for f in dataclasses.fields(cfg.train)}:
            for packing in (True, False):
                model.load_state_dict(init)
                c = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, packing=packing))
                tps, loss = our_run(model, seqs, c, dev)
                rows.append((shape, "packed" if packing else "padded", tps, 100 * tps * flops / peak, loss, ""))
        else:
            rows.append((shape, "packed vs padded", float("nan"), float("nan"), float("nan"),
                         "no train.packing in this build"))
        model.load_state_dict(init)
        model.train()
        hf_tps, hf_loss = trainer_run(model, seqs, cfg, dev, tok)
        rows.append((shape, "Trainer", hf_tps, 100 * hf_tps * flops / peak, hf_loss,
                     f"ours/Trainer {ours_tps / hf_tps:.2f}x (goal >= 1.3)"))
        del model
        model = build(shape, tok, high).to(dev).eval()       # the testbed's vocabulary
        score, generate = eval_speed(model, builder, test, "score", dev), eval_speed(model, builder, test, "generate", dev)
        rows.append((shape, "eval score/generate", score, float("nan"), float("nan"),
                     f"{score:.1f} vs {generate:.1f} examples/s ({score / generate:.1f}x)"))
        del model
        if dev == "cuda":
            torch.cuda.empty_cache()
    name = torch.cuda.get_device_name(0) if dev == "cuda" else "CPU"
    print(f"device: {name}   matmul peak ({'bf16' if dev == 'cuda' else 'fp32'}): {peak / 1e9:.0f} GFLOP/s   "
          f"{steps} steps x batch {batch}, mean {mean_len:.0f} tokens")
    print(f"{'shape':<12} {'what':<20} {'tokens/s':>12} {'MFU %':>7} {'loss':>8}  note")
    for shape, what, tps, mfu, loss, note in rows:
        cells = [f"{tps:12.0f}" if tps == tps and what != "eval score/generate" else f"{'-':>12}",
                 f"{mfu:7.1f}" if mfu == mfu else f"{'-':>7}", f"{loss:8.4f}" if loss == loss else f"{'-':>8}"]
        print(f"{shape:<12} {what:<20} {' '.join(cells)}  {note}")


if __name__ == "__main__":
    main()
