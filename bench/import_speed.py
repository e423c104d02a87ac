"""How fast the `file` importer reads 100,000 rows, per layout, and how much memory it holds.

    python bench/import_speed.py            # prints rows/s and peak traced memory per layout
    python bench/import_speed.py --rows 20000

Writes synthetic files (4 choices, a ~30-word rationale) into a temporary folder, then times
load_examples("file", …) on each. JSON Lines and CSV/TSV are streamed line by line; the JSON
array and keyed-object layouts are one JSON value and are parsed whole. The data report is
timed too, since it runs after every import, and so is a whole import_file (read, check, report,
write the set). Peak memory is tracemalloc's (Python objects, the examples included), from a second
pass. Baseline, measured in the same run: json.loads of every line of the JSON Lines file, the floor
of any reader; each layout prints its time as a multiple of it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cotdistill.data import load_examples  # noqa: E402
from cotdistill.data.report import data_report  # noqa: E402
from cotdistill.data.store import import_file  # noqa: E402

WORDS = "the cat sat on a mat while rain fell over quiet hills and rivers".split()


def record(i: int) -> dict:
    rationale = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(30))
    return {"id": f"r{i}", "question": f"Question number {i} about things?",
            "choices": ["alpha", "beta", "gamma", "delta"], "label": "abcd"[i % 4],
            "rationale": f"{rationale} {i}."}


def write(folder: Path, n: int) -> dict[str, tuple[Path, dict]]:
    rows = [record(i) for i in range(n)]
    files = {}
    path = folder / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    files["jsonl"] = (path, {})
    path = folder / "rows.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    files["json array"] = (path, {})
    path = folder / "keyed.json"
    path.write_text(json.dumps({str(i): r for i, r in enumerate(rows)}), encoding="utf-8")
    files["json keyed"] = (path, {})
    path = folder / "rows.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**r, "choices": "|".join(r["choices"])} for r in rows)
    files["csv"] = (path, {"choices_sep": "|"})
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    print(f"{args.rows:,} rows, CPU {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        files = write(Path(tmp), args.rows)
        baseline = _baseline(files["jsonl"][0])
        print(f"{'baseline':11s} json.loads per line  {baseline:6.2f} s  "
              f"{args.rows / baseline:9,.0f} rows/s")
        for layout, (path, options) in files.items():
            t0 = time.perf_counter()
            examples = load_examples("file", "train", path=str(path), **options)
            seconds = time.perf_counter() - t0
            del examples
            tracemalloc.start()  # a second pass: tracing slows Python several times over
            examples = load_examples("file", "train", path=str(path), **options)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            assert len(examples) == args.rows
            size = path.stat().st_size / 2**20
            print(f"{layout:11s} {size:6.1f} MiB file  {seconds:6.2f} s  "
                  f"{args.rows / seconds:9,.0f} rows/s  {seconds / baseline:5.1f}x baseline  "
                  f"peak {peak / 2**20:6.1f} MiB")
        t0 = time.perf_counter()
        data_report({"train": examples})
        seconds = time.perf_counter() - t0
        print(f"data report {seconds:6.2f} s  {args.rows / seconds:9,.0f} rows/s  "
              f"{seconds / baseline:5.1f}x baseline")
        t0 = time.perf_counter()
        import_file(files["jsonl"][0], Path(tmp) / "set")
        seconds = time.perf_counter() - t0
        print(f"import_file {seconds:6.2f} s  {args.rows / seconds:9,.0f} rows/s  "
              f"{seconds / baseline:5.1f}x baseline  (JSON Lines: read, check, report, write)")


def _baseline(path: Path) -> float:
    t0 = time.perf_counter()
    with path.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    assert rows
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
