"""What the bounded readers (cotdistill/safe_load.py) cost, and how fast they refuse bad input.

    .venv/bin/python bench/parse_limits.py [--rows 100000]

Prints, each against a baseline measured in the same run:
- a 1 KB alias bomb ("billion laughs") refused, against parsing a shipped config;
- 200,000 nested `[` refused (YAML and JSON), against the same baseline;
- a JSON array of `--rows` records read with the depth prescan and the duplicate-key check, against
  plain `json.loads` (the cost of the checks on a large data file).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cotdistill.safe_load import ParseError, load_json, load_yaml  # noqa: E402

LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi"))


def best(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def refused(fn) -> None:
    try:
        fn()
    except ParseError:
        return
    raise AssertionError("not refused")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    config = (ROOT / "configs" / "paper" / "base.yaml").read_text()
    base = best(lambda: load_yaml(config))
    print(f"baseline: a shipped config parsed in {base * 1e3:.2f} ms")
    for name, fn in [("alias bomb (1 KB, 387 million values expanded)", lambda: load_yaml(LAUGHS)),
                     ("YAML nested 200,000 deep", lambda: load_yaml("[" * 200_000)),
                     ("JSON nested 200,000 deep", lambda: load_json("[" * 200_000))]:
        t = best(lambda: refused(fn))
        print(f"{name}: refused in {t * 1e3:.1f} ms ({t / base:.1f}x the config)")
    rows = [{"id": i, "question": "Which colour is the sky on a clear day?" * 2, "choices": ["red", "blue", "green"],
             "label": "b", "meta": {"source": {"file": "x.json", "row": i}}} for i in range(args.rows)]
    text = json.dumps(rows)
    plain = best(lambda: json.loads(text), 3)
    checked = best(lambda: load_json(text), 3)
    print(f"JSON array of {args.rows:,} records ({len(text) / 2**20:.0f} MiB): json.loads {plain:.2f} s, "
          f"load_json {checked:.2f} s ({checked / plain:.2f}x: depth prescan and duplicate-key check)")


if __name__ == "__main__":
    main()
