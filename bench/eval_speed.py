"""Evaluation speed: `score` vs `generate` on the same `after`-trained checkpoint and test items.

    python bench/eval_speed.py [--train-steps 150] [--n-test 300]

Trains (or reuses, cached in the run folder) a CommonsenseQA `after` run of the tiny student, then
evaluates its test items both ways: seconds for each, the ratio, and how often the two modes
predict the same label. Goal: score >= 5x faster than generate. Also timed: generation that does
not stop at the label but writes the rationale to the end, as a generic `generate()` loop would.
"""

from __future__ import annotations

import argparse
import time

from common import ROOT, device, machine, sync

from cotdistill.config import load_config  # noqa: E402
from cotdistill.evaluate.evaluation import evaluate, summarize  # noqa: E402
from cotdistill.run import default_run_dir, load_examples, make_builder, run  # noqa: E402
from cotdistill.students.loading import check_tokenizer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-steps", type=int, default=150)
    ap.add_argument("--n-test", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    dev = device()
    cfg = load_config(ROOT / "configs" / "cqa-after.yaml",
                      [f"train.steps={args.train_steps}", f"data.n_test={args.n_test}", "name=bench-eval"])
    out = default_run_dir(cfg)
    if not (out / "summary.json").exists():
        print(f"training the after checkpoint ({args.train_steps} steps) into {out} …")
        run(cfg, out, device=dev)
    from transformers import AutoModelForCausalLM, AutoTokenizer
    model = AutoModelForCausalLM.from_pretrained(out / "model").to(dev)
    tok = AutoTokenizer.from_pretrained(out / "model")
    check_tokenizer(tok, str(out / "model"))
    train, test = load_examples(cfg)
    builder = make_builder(cfg, tok, train)

    timings, records = {}, {}
    variants = {"score": ("score", True), "generate": ("generate", True),
                "generate-to-eos": ("generate", False)}      # no early stop: the rationale is written too
    for name, (mode, stop) in variants.items():
        evaluate(model, builder, test[:args.batch_size], mode=mode, batch_size=args.batch_size, device=dev)  # warm-up
        sync(dev)
        t0 = time.perf_counter()
        records[name] = evaluate(model, builder, test, mode=mode, batch_size=args.batch_size,
                                 max_new_tokens=cfg.eval.max_new_tokens, device=dev, stop_at_label=stop)
        sync(dev)
        timings[name] = time.perf_counter() - t0
    agree = sum(a["predicted"] == b["predicted"] for a, b in zip(records["score"], records["generate"]))
    print(f"machine: {machine()}")
    print(f"checkpoint: {out} · {len(test)} CommonsenseQA test items · batch {args.batch_size}")
    for name in variants:
        s = summarize(records[name])
        print(f"{name:<16} {timings[name]:7.2f} s   accuracy {s['accuracy']:.3f} "
              f"[{s['accuracy_low']:.3f}, {s['accuracy_high']:.3f}]   unparsed {s['unparsed']}")
    print(f"ratio (generate / score): {timings['generate'] / timings['score']:.1f}x   (goal >= 5)")
    print(f"ratio (generate-to-eos / score): {timings['generate-to-eos'] / timings['score']:.1f}x")
    print(f"agreement of predictions: {agree}/{len(test)} ({100 * agree / len(test):.1f}%)")


if __name__ == "__main__":
    main()
