"""The CPU preset for real data (cotdistill/studies/presets.py): each arm's training and evaluation rate from
short runs, extrapolated to the preset's full size, as a ratio to the 15-minute goal per run.

    nice -n 10 python bench/cpu_preset.py [--steps 4] [--items 32] [--placements none,before,after]

Each placement runs with the preset's settings but `--steps` training steps and `--items` test
questions, on one thread (the embedded stack gives each of a 2-core machine's two training workers
one core). Beside wall time the process's CPU time is measured: on a busy machine the CPU time of a
one-thread process is what an idle core takes as wall time, so it is the figure extrapolated.
Printed per placement: start-up (data, tokenizer, model), seconds per training step (the first,
warm-up step left out), seconds per evaluated question, saving, the training tokens per step, and
the preset's run extrapolated (start-up + steps x step + test questions x question + saving) against
900 s.
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from common import machine  # noqa: E402

import torch  # noqa: E402

from cotdistill.config import RunConfig, from_dict  # noqa: E402
from cotdistill.studies.presets import PRESETS, preset_configs  # noqa: E402
from cotdistill.run import run  # noqa: E402

GOAL_S = 900.0
PRESET = "cqa-smollm2-cpu"


def timed_run(config: dict, steps: int, items: int, out: Path) -> dict:
    """One short run of `config`; (cpu, wall) seconds of each phase from its events."""
    cfg = copy.deepcopy(config)
    cfg["train"].update(steps=steps, warmup_steps=1, log_every=1)
    cfg["data"]["n_test"] = items
    marks: list[tuple[str, int | None, float, float]] = []

    def clock(event: dict) -> None:
        done = event.get("done", event.get("step"))
        marks.append((event["phase"], done, time.process_time(), time.perf_counter()))

    t0 = (time.process_time(), time.perf_counter())
    summary = run(from_dict(RunConfig, cfg), out, callback=clock, device="cpu")
    end = (time.process_time(), time.perf_counter())

    def at(phase: str, done=None, last: bool = False) -> tuple[float, float]:
        found = [(c, w) for p, d, c, w in marks if p == phase and (done is None or d == done)]
        return found[-1] if last else found[0]

    start = at("start")
    first_step, last_step = at("train", 1), at("train", steps)
    eval_first, eval_last = at("evaluate", 0), at("evaluate", last=True)
    save_first = at("save", 0)
    out_rows = {}
    for name, (a, b, n) in {"start-up": (t0, start, 1), "step": (first_step, last_step, steps - 1),
                            "question": (eval_first, eval_last, items), "saving": (save_first, end, 1)}.items():
        out_rows[name] = tuple((b[i] - a[i]) / n for i in (0, 1))
    out_rows["tokens_per_step"] = summary["tokens_per_s"] * summary["train_seconds"] / steps
    out_rows["eval_mode"] = summary["eval_mode"]
    out_rows["truncated"] = summary["truncated_sequences"] / max(1, summary["n_train"])
    return out_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--items", type=int, default=32)
    parser.add_argument("--placements", default="none,before,after")
    args = parser.parse_args()
    torch.set_num_threads(1)
    configs = preset_configs(PRESET)
    base = PRESETS[PRESET]["matrix"]["base"]
    full_steps, full_items = base["train"]["steps"], base["data"]["n_test"]
    print(f"{machine()}; load average {os.getloadavg()[0]:.1f}; preset {PRESET}: {full_steps} steps, "
          f"{full_items} test questions; short runs: {args.steps} steps, {args.items} questions")
    print(f"{'placement':<10} {'eval':<9} {'start-up s':>11} {'s/step':>8} {'s/question':>11} {'saving s':>9} "
          f"{'tokens/step':>12} {'run (cpu) s':>12} {'/ 900 s':>8} {'wall s/step':>12}")
    for placement in args.placements.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            r = timed_run(configs[placement], args.steps, args.items, Path(tmp) / "run")
        cpu = {k: v[0] for k, v in r.items() if isinstance(v, tuple)}
        total = cpu["start-up"] + full_steps * cpu["step"] + full_items * cpu["question"] + cpu["saving"]
        print(f"{placement:<10} {r['eval_mode']:<9} {cpu['start-up']:>11.1f} {cpu['step']:>8.2f} "
              f"{cpu['question']:>11.3f} {cpu['saving']:>9.1f} {r['tokens_per_step']:>12.0f} {total:>12.0f} "
              f"{total / GOAL_S:>8.2f} {r['step'][1]:>12.2f}")
        if r["truncated"]:
            print(f"  note: {r['truncated']:.0%} of the training sequences were cut at max_length")


if __name__ == "__main__":
    main()
