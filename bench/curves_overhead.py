"""What the training curves cost: one run of the same configuration with validation off (baseline),
then with validation every 20 steps, in the same process on the same machine.

    .venv/bin/python bench/curves_overhead.py [--steps 100] [--every 20] [--val-size 64]

Both runs train the tiny student on synthetic-count (`after`, 120 training and 64 test items) and
must end with the same final loss and accuracy (validation draws no random numbers); the script
prints each wall time, the ratio, and the number of validation points. The per-step label and
rationale loss are logged in both runs (they come out of the training step's own forward pass).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402,F401  (environment: offline, state folder)

from cotdistill.config import load_config  # noqa: E402
from cotdistill.run import run  # noqa: E402


def one(every: int, args, folder: Path) -> tuple[float, dict, list[dict]]:
    cfg = load_config(None, ["data.name=synthetic-count", "data.n_train=120", "data.n_test=64", "placement=after",
                             "student.vocab_size=300", "student.max_length=128", f"train.steps={args.steps}",
                             "train.batch_size=8", "train.log_every=10", "eval.mode=score", "eval.n_boot=200",
                             f"eval.every={every}", f"eval.val_size={args.val_size}"])
    t0 = time.perf_counter()
    summary = run(cfg, folder, device="cpu")
    seconds = time.perf_counter() - t0
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return seconds, summary, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--every", type=int, default=20)
    parser.add_argument("--val-size", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base_s, base, _ = one(0, args, Path(tmp) / "off")
        val_s, checked, rows = one(args.every, args, Path(tmp) / "on")
    points = sum("val_accuracy" in r for r in rows)
    print(f"validation off: {base_s:.1f} s   every {args.every} steps ({points} points, {args.val_size} items): "
          f"{val_s:.1f} s   ratio {val_s / base_s:.2f}x")
    print(f"same result: final loss {base['final_loss']:.6f} / {checked['final_loss']:.6f}, "
          f"accuracy {base['accuracy']:.4f} / {checked['accuracy']:.4f}")
    if base["final_loss"] != checked["final_loss"] or base["accuracy"] != checked["accuracy"]:
        raise SystemExit("validation changed the result")


if __name__ == "__main__":
    main()
