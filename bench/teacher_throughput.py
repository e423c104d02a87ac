"""Teacher throughput: batched local generation vs one prompt at a time, on the same examples.

    python bench/teacher_throughput.py [--n 32] [--batch-size 8] [--max-new-tokens 32]
                                       [--smollm-n 4] [--smollm-tokens 24] [--skip-smollm]

Both modes run the same greedy decoding of the same few-shot CommonsenseQA prompts (the built-in
multiple-choice template, ~350 tokens each) through `LocalTeacher.complete`: once in left-padded
batches of `--batch-size`, once one prompt per call. Printed: examples/s of each, their ratio,
and how many completions are identical in both modes (greedy: all of them, if padding is right).
Models: the built-in tiny teacher (random GPT-2; it never stops early, so every row decodes the
full budget) and SmolLM2-135M-Instruct (stops at the next 'Q:', so a batch waits for its longest
row). The completion cache is not involved: this measures the model.
"""

from __future__ import annotations

import argparse
import time

from common import device, machine, sync

from cotdistill.data import load_examples  # noqa: E402
from cotdistill.teachers import Decoding, LocalTeacher, make_prompt  # noqa: E402


def timed(fn, dev: str) -> tuple[float, list[str]]:
    sync(dev)
    start = time.perf_counter()
    texts = fn()
    sync(dev)
    return time.perf_counter() - start, texts


def compare(model: str, prompts: list[str], batch_size: int, tokens: int, dev: str) -> None:
    teacher = LocalTeacher(model, device=dev, max_batch_size=batch_size)
    decoding = Decoding(max_new_tokens=tokens)
    teacher.complete(prompts[:2], Decoding(max_new_tokens=2))                      # warm-up
    batched_s, batched = timed(lambda: [c.text for c in teacher.complete(prompts, decoding)], dev)
    single_s, single = timed(lambda: [teacher.complete([p], decoding)[0].text for p in prompts],
                             dev)
    same = sum(a == b for a, b in zip(batched, single))
    n = len(prompts)
    print(f"{model:<14} {n:>3} examples · batch {batch_size} · {tokens} new tokens max")
    print(f"  batched        {batched_s:7.2f} s   {n / batched_s:7.2f} examples/s")
    print(f"  one at a time  {single_s:7.2f} s   {n / single_s:7.2f} examples/s")
    print(f"  ratio (batched / one at a time): {single_s / batched_s:.2f}x   "
          f"identical completions: {same}/{n}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=32, help="Examples for the tiny teacher.")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--smollm-n", type=int, default=4)
    ap.add_argument("--smollm-tokens", type=int, default=24)
    ap.add_argument("--skip-smollm", action="store_true")
    args = ap.parse_args()
    dev = device()
    examples = load_examples("commonsenseqa-dsbs", "test")
    prompt = make_prompt("multiple_choice")
    prompts = [prompt.render(ex) for ex in examples]
    print(f"machine: {machine()}")
    compare("tiny", prompts[:args.n], args.batch_size, args.max_new_tokens, dev)
    if not args.skip_smollm:
        compare("smollm2-135m", prompts[:args.smollm_n], min(args.batch_size, args.smollm_n),
                args.smollm_tokens, dev)


if __name__ == "__main__":
    main()
