"""Attribution speed: examples per second of each method, batched and one example at a time.

    python bench/attribution_speed.py [--config configs/cqa-before.yaml] [--n 16] [--steps 32]

Trains (or reuses, cached in the run folder) a short `before` run of the config, then attributes the
same training examples with every method three ways, on the same model:
- batched: `batch_size` rows per forward pass, across examples (and IG's interpolation steps);
- one example at a time: one `attribute` call per example, its own rows still in one pass;
- one row at a time: one forward pass per row (per IG step, per occluded token): the naive loop.
Goal: batched IG >= 4x faster than one example at a time on CPU (2 cores). Both baselines are
printed, because IG's own steps already fill a pass: against "one example" (steps batched, examples
not) batching across examples gains only what per-pass overhead costs, against "one row" (nothing
batched) it gains the most. The one-row variants run on the first `--n-slow` examples only (they
are slow); examples/s stays comparable. Timings are the best of `--repeats` interleaved rounds.

    python bench/attribution_speed.py --override data.name=synthetic-key --train-steps 200
"""

from __future__ import annotations

import argparse
import time

import torch
from common import ROOT, device, machine, sync

from cotdistill.attribution import METHODS, attribute, load_scoring_model, summarize  # noqa: E402
from cotdistill.config import load_config  # noqa: E402
from cotdistill.run import default_run_dir, load_examples, run  # noqa: E402

SMALL_RUN = ["data.n_test=8", "eval.max_new_tokens=16", "eval.n_boot=100", "name=bench-attribution"]


def best_times(dev: str, variants: dict, repeats: int) -> tuple[dict, dict]:
    """Best wall time of each variant over `repeats` rounds, the variants interleaved in every round
    (a shared machine only ever adds time, and drifts: interleaving spreads the drift over all)."""
    best, outputs = {name: float("inf") for name in variants}, {}
    for _ in range(repeats):
        for name, fn in variants.items():
            sync(dev)
            t0 = time.perf_counter()
            outputs[name] = fn()
            sync(dev)
            best[name] = min(best[name], time.perf_counter() - t0)
    return best, outputs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "cqa-before.yaml"))
    ap.add_argument("--override", action="append", default=["student.size=tiny"],
                    help="KEY=VALUE config override (repeatable; default student.size=tiny).")
    ap.add_argument("--train-steps", type=int, default=30)
    ap.add_argument("--n", type=int, default=16, help="Examples attributed.")
    ap.add_argument("--n-slow", type=int, default=4, help="Examples for the one-row-at-a-time runs.")
    ap.add_argument("--steps", type=int, default=32, help="IG quadrature nodes.")
    ap.add_argument("--batch-size", type=int, default=64, help="Rows per forward pass when batched.")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's).")
    ap.add_argument("--repeats", type=int, default=3, help="Timings per variant; the best is kept.")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = device()
    cfg = load_config(args.config, [*args.override, f"train.steps={args.train_steps}", *SMALL_RUN])
    out = default_run_dir(cfg)
    if not (out / "summary.json").exists():
        print(f"training the before checkpoint ({args.train_steps} steps) into {out} …")
        run(cfg, out, device=dev)
    scorer = load_scoring_model(out)
    examples = load_examples(cfg)[0][:args.n]
    go = lambda exs, method, bs: attribute(scorer.model, scorer.tokenizer, exs, method=method,  # noqa: E731
                                           steps=args.steps, batch_size=bs, device=dev)
    go(examples[:2], "ig", args.batch_size)                                 # warm-up

    slow = examples[:args.n_slow]
    variants, sizes = {}, {}
    for method in METHODS:
        variants[method, "batched"] = lambda m=method: go(examples, m, args.batch_size)
        variants[method, "one example"] = lambda m=method: [go([ex], m, args.batch_size) for ex in examples]
        variants[method, "one row"] = lambda m=method: [go([ex], m, 1) for ex in slow]
        sizes.update({(method, "batched"): len(examples), (method, "one example"): len(examples),
                      (method, "one row"): len(slow)})
    seconds, outputs = best_times(dev, variants, args.repeats)
    rates = {key: sizes[key] / seconds[key] for key in variants}

    c = scorer.model.config
    shape = f"{c.model_type} {c.num_hidden_layers}x{c.hidden_size}"
    lengths = [len(scorer.tokenizer.encode(" " + ex.rationale)) for ex in examples]
    print(f"machine: {machine()} · best of {args.repeats}, interleaved")
    print(f"model: {out / 'model'} ({shape}) · {len(examples)} {cfg.data.name} training examples, "
          f"rationale {min(lengths)}-{max(lengths)} tokens · IG steps {args.steps} · batch {args.batch_size} rows")
    print(f"{'method':<14} {'batched':>10} {'one example':>12} {'one row':>10}   examples/s")
    for method in METHODS:
        print(f"{method:<14} {rates[method, 'batched']:>10.2f} {rates[method, 'one example']:>12.2f} "
              f"{rates[method, 'one row']:>10.2f}")
    ig = summarize(outputs["ig", "batched"])
    print(f"IG completeness error: mean {ig['mean_completeness_error']:.2e}, max "
          f"{ig['max_completeness_error']:.2e} nats")
    for base in ("one example", "one row"):
        print(f"ratio batched / {base + ' (IG):':<17} {rates['ig', 'batched'] / rates['ig', base]:5.1f}x   "
              f"(goal >= 4x against one example at a time)")


if __name__ == "__main__":
    main()
