"""Rationale sets: immutable, versioned folders of teacher rationales for one dataset.

    path = write_rationale_set(out_dir, records, Origin("teacher", {"name": "svamp-dsbs"}, ...))
    rs = open_rationale_set(path)                       # provenance checked against its hash
    rs.examples("train"); rs.provenance["teacher_accuracy"]; rs.content_hash
    import_file({"train": "mine.jsonl"}, out_dir, columns={"label": "answer"})
    read_import({"train": "mine.jsonl"}, columns={"label": "answer"})   # the same, nothing written
    import_release("commonsenseqa-dsbs", "../shared/data/commonsenseqa-dsbs", out_dir)
    compare_sets(path_a, path_b)                        # lengths, gold agreement, overlap

A set folder holds `examples.jsonl` (keys: cotdistill.data.rationale_set.RECORD_KEYS) and
`provenance.json` (keys: PROVENANCE_KEYS). It is written into a hidden temporary folder next to
`out_dir` and renamed into place, so a crash or a bad input leaves no set at all. An existing
folder is never overwritten. Train on a set with `data: {name: rationale-set, options: {path: …}}`;
`rationale_filter: teacher_correct` keeps the examples whose teacher label matches the gold one.
Teacher generation (`cotdistill.teachers.generate_rationales`) ends by writing a set here.
An import refuses a rationale longer than `max_rationale_chars` (default MAX_RATIONALE_CHARS,
$COTDISTILL_MAX_RATIONALE_CHARS overrides it) before anything is written: a rationale that long is
almost always a whole document pasted into the column, and it would be cut silently in training.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import statistics
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from cotdistill import __version__
from cotdistill.files import fsync_dir
from cotdistill.data import DATASETS, load_examples
from cotdistill.data.rationale_set import (EXAMPLES_FILE, FORMAT, PROVENANCE_FILE, RECORD_KEYS,
                                           canonical_line, content_hash, example_of, read_set,
                                           record_of, sets_root)
from cotdistill.data.readers import Where
from cotdistill.data.report import data_report, import_notes
from cotdistill.data.report import strip_leaks as strip_leaks_of
from cotdistill.errors import DataError
from cotdistill.examples import Example, labels_equal, question_id, unstorable

__all__ = ["Origin", "PROVENANCE_KEYS", "RECORD_KEYS", "RationaleSet", "compare_sets",
           "content_hash", "import_file", "import_release", "open_rationale_set", "read_import",
           "record_of", "sets_root", "write_rationale_set"]

PROVENANCE_KEYS = ("format", "name", "created_at", "cotdistill_version", "source", "dataset",
                   "teacher", "prompt", "decoding", "gold_conditioned", "content_hash",
                   "n_examples", "splits", "n_with_rationale", "splits_with_rationale",
                   "teacher_accuracy", "teacher_accuracy_by_split", "n_unparsed", "n_errors",
                   "extra")
MAX_RATIONALE_CHARS = 20_000
MAX_RATIONALE_ENV = "COTDISTILL_MAX_RATIONALE_CHARS"


def max_rationale_chars() -> int:
    """The import cap on a rationale's length: $COTDISTILL_MAX_RATIONALE_CHARS, else 20,000."""
    value = os.environ.get(MAX_RATIONALE_ENV)
    if value is None:
        return MAX_RATIONALE_CHARS
    try:
        cap = int(value)
    except ValueError:
        cap = 0
    if cap < 1:
        raise DataError(f"${MAX_RATIONALE_ENV} must be a whole number of characters above 0, found {value!r}")
    return cap


def check_rationale_lengths(examples: Mapping[str, Sequence[Example]], cap: int, source: str | Path) -> None:
    """Refuse the first rationale longer than `cap`, naming its file and row (`source` when the
    example does not say where it came from)."""
    for part, exs in examples.items():
        for i, e in enumerate(exs, start=1):
            if e.rationale is not None and len(e.rationale) > cap:
                raise DataError(f"the rationale of example {e.id!r} (split {part!r}) has "
                                f"{len(e.rationale):,} characters, more than the cap of {cap:,} "
                                f"(--max-rationale-chars or ${MAX_RATIONALE_ENV} raises it)",
                                file=str(e.meta.get("file") or source), row=e.meta.get("row", i),
                                field="rationale")


@dataclass
class Origin:
    """Where a set's rationales come from; written into provenance.json."""

    source: str
    """'teacher' (generated here), 'file' (imported) or 'release' (a published release)."""
    dataset: Mapping[str, Any]
    """The source dataset: {'name': …, 'options': …} or the imported files."""
    teacher: Mapping[str, Any] | None = None
    """The teacher's description (model, API, …); never a secret."""
    prompt: Mapping[str, Any] | None = None
    decoding: Mapping[str, Any] | None = None
    gold_conditioned: bool | None = None
    """Whether the teacher was told the gold answer (rationalization); None if unknown."""
    has_teacher: bool = True
    """Whether teacher labels exist: then accuracy and unparsed outputs are counted."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    answered: Callable[[Mapping[str, Any]], bool] | None = None
    """Which records hold a teacher answer (None: every one): only those can be unparsed."""


@dataclass
class RationaleSet:
    """An opened set: its folder, provenance and records (hash already verified)."""

    path: Path
    provenance: dict[str, Any]
    records: list[dict[str, Any]]

    @property
    def content_hash(self) -> str:
        return self.provenance["content_hash"]

    @property
    def splits(self) -> list[str]:
        return list(dict.fromkeys(r["split"] for r in self.records))

    def examples(self, split: str | None = None) -> list[Example]:
        """The examples of one split (all splits if None), in file order."""
        file = self.path / EXAMPLES_FILE
        return [example_of(Where(file, i, f"line {i} of the JSON Lines file"), r)
                for i, r in enumerate(self.records, start=1) if split in (None, r["split"])]


def open_rationale_set(path: str | Path) -> RationaleSet:
    """A set folder (or a set name under sets_root()); DataError if edited since written."""
    folder, provenance, records = read_set(path)
    return RationaleSet(folder, provenance, [record for _, record in records])


# --- writing ---------------------------------------------------------------------------------

def write_rationale_set(out_dir: str | Path, records: Sequence[Mapping[str, Any]], origin: Origin,
                        *, name: str | None = None) -> Path:
    """Write a new set atomically; DataError if out_dir exists or a record is not valid."""
    out_dir = Path(out_dir).expanduser()
    if out_dir.exists():
        raise DataError(f"{out_dir} already exists and rationale sets are immutable: choose "
                        f"another folder (or delete that one to replace it)", file=str(out_dir))
    records = [{k: record[k] for k in RECORD_KEYS} for record in _checked(records, out_dir)]
    provenance = build_provenance(records, origin, name or out_dir.name)
    _atomic_dir(out_dir, lambda tmp: _write_files(tmp, records, provenance))
    return out_dir


def _checked(records: Sequence[Mapping[str, Any]], out_dir: Path) -> Sequence[Mapping[str, Any]]:
    """The records, after checking that each has every key, loads as an Example and is unique."""
    if not records:
        raise DataError("a rationale set needs at least one example", file=str(out_dir))
    seen: dict[tuple[str, str], int] = {}
    file = out_dir / EXAMPLES_FILE
    for i, record in enumerate(records, start=1):
        where = Where(file, i, f"example {i} of the set, from 1")
        missing = [k for k in RECORD_KEYS if k not in record]
        if missing:
            raise where.error("missing field", missing[0])
        example_of(where, record)
        for key in RECORD_KEYS:
            texts = record[key] if isinstance(record[key], list) else [record[key]]
            problem = next((p for t in texts if isinstance(t, str) and (p := unstorable(t))), None)
            if problem:
                raise where.error(f"the text holds {problem}", key)
        first = seen.setdefault((record["split"], record["id"]), i)
        if first != i:
            raise where.error(f"duplicate id {record['id']!r} in split {record['split']!r}, "
                              f"first seen at example {first}", "id")
    return records


def build_provenance(records: Sequence[Mapping[str, Any]], origin: Origin,
                     name: str) -> dict[str, Any]:
    """provenance.json's content: the origin, counts, teacher accuracy (overall and per split)
    and the content hash. Unparsed teacher answers are counted only among the records that hold
    a teacher answer (origin.answered)."""
    n = len(records)
    correct = sum(1 for r in records if r["teacher_correct"])
    answered = origin.answered or (lambda r: True)
    unparsed = sum(1 for r in records
                   if r["teacher_label"] is None and r["error"] is None and answered(r))
    splits = Counter(r["split"] for r in records)
    by_split = {s: sum(1 for r in records if r["split"] == s and r["teacher_correct"]) / k
                for s, k in splits.items()}
    return {
        "format": FORMAT, "name": name,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cotdistill_version": __version__, "source": origin.source,
        "dataset": dict(origin.dataset),
        "teacher": dict(origin.teacher) if origin.teacher is not None else None,
        "prompt": dict(origin.prompt) if origin.prompt is not None else None,
        "decoding": dict(origin.decoding) if origin.decoding is not None else None,
        "gold_conditioned": origin.gold_conditioned, "content_hash": content_hash(records),
        "n_examples": n, "splits": dict(splits),
        "n_with_rationale": sum(1 for r in records if r["rationale"]),
        "splits_with_rationale": {s: sum(1 for r in records if r["split"] == s and r["rationale"])
                                  for s in splits},
        "teacher_accuracy": correct / n if origin.has_teacher else None,
        "teacher_accuracy_by_split": by_split if origin.has_teacher else None,
        "n_unparsed": unparsed if origin.has_teacher else 0,
        "n_errors": sum(1 for r in records if r["error"] is not None),
        "extra": dict(origin.extra)}


def _write_files(folder: Path, records: Sequence[Mapping[str, Any]],
                 provenance: Mapping[str, Any]) -> None:
    _write_synced(folder / EXAMPLES_FILE, "".join(canonical_line(r) + "\n" for r in records))
    _write_synced(folder / PROVENANCE_FILE,
                  json.dumps(provenance, indent=1, ensure_ascii=False) + "\n")


def _write_synced(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _atomic_dir(out_dir: Path, write: Callable[[Path], None]) -> None:
    """Fill a hidden sibling folder, then rename it to out_dir; nothing is left on failure."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.mkdir()
    try:
        write(tmp)
        os.rename(tmp, out_dir)                       # atomic on one file system
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(out_dir.parent)


# --- importing -------------------------------------------------------------------------------

def import_file(paths: str | Path | Mapping[str, str | Path], out_dir: str | Path, *,
                split: str = "train", name: str | None = None, teacher: str | None = None,
                gold_conditioned: bool | None = None, holdout: float | None = None,
                seed: int = 0, strip_leaks: bool = False,
                split_options: Mapping[str, Mapping[str, Any]] | None = None,
                max_rationale: int | None = None, keep_duplicate_test_rows: bool = False,
                **options: Any) -> Path:
    """A set from your file(s) through the `file` importer's column mapping.

    `paths` is one file (for `split`) or {split: file}; `options` are the importer's (columns,
    format, kind, …), `split_options` {split: options} override them where the splits' files
    differ. `holdout` moves a seeded share of the only split's questions to a `test` split (all
    rows of one question together). One file given as two splits is refused: the test would be
    the training data. A split other than train keeps one row per question unless
    `keep_duplicate_test_rows` (a run then computes its interval over questions). Every file is
    read and checked before anything is written, rationales longer than `max_rationale`
    characters (default: max_rationale_chars()) included. The import's counts (cut misses,
    placeholders, duplicate test rows dropped) go into the provenance's `extra.import`.
    """
    files = {split: paths} if isinstance(paths, (str, Path)) else dict(paths)
    examples = read_import(files, holdout=holdout, seed=seed, strip_leaks=strip_leaks,
                           split_options=split_options, max_rationale=max_rationale,
                           keep_duplicate_test_rows=keep_duplicate_test_rows, **options)
    records = [record_of(e, part) for part, exs in examples.items() for e in exs]
    dataset = {"name": "file", "files": {k: str(v) for k, v in files.items()},
               "options": options, "split_options": dict(split_options or {}),
               "holdout": holdout, "holdout_seed": seed if holdout is not None else None,
               "strip_leaks": strip_leaks, "keep_duplicate_test_rows": keep_duplicate_test_rows}
    notes = import_notes(examples)
    warnings = data_report(examples, notes=notes)["warnings"]
    origin = Origin("file", dataset, {"name": teacher} if teacher else None,
                    gold_conditioned=gold_conditioned,
                    has_teacher=any(r["teacher_correct"] is not None for r in records),
                    answered=lambda r: False,  # an unreadable teacher label is refused at import
                    extra={"warnings": warnings, "import": notes})
    return write_rationale_set(out_dir, records, origin, name=name)


def read_import(files: Mapping[str, str | Path], *, holdout: float | None = None, seed: int = 0,
                strip_leaks: bool = False,
                split_options: Mapping[str, Mapping[str, Any]] | None = None,
                max_rationale: int | None = None, keep_duplicate_test_rows: bool = False,
                **options: Any) -> dict[str, list[Example]]:
    """{split: examples} exactly as import_file writes them (leaking sentences stripped when
    `strip_leaks`, one row per question outside train unless `keep_duplicate_test_rows`), with
    every check made; writes nothing. The browser's live preview of an import reads files
    through this too, so it shows what the import will write."""
    _check_distinct_files(files)
    _check_import_options(split_options, strip_leaks, seed)
    per_split = {part: {**options, **dict((split_options or {}).get(part, {}))} for part in files}
    examples = {part: load_examples("file", part, path=str(file), **per_split[part])
                for part, file in files.items()}
    for part, exs in examples.items():
        check_rationale_lengths({part: exs}, max_rationale or max_rationale_chars(), files[part])
    if holdout is not None:
        examples = hold_out(examples, holdout, seed)
    if not keep_duplicate_test_rows:
        examples = {part: exs if part == "train" else one_row_per_question(exs)
                    for part, exs in examples.items()}
    if strip_leaks:
        examples = {part: [_stripped(e) for e in exs] for part, exs in examples.items()}
    return examples


def _check_import_options(split_options, strip_leaks, seed) -> None:
    """DataError naming an import-level option of the wrong type (from a mapping file or a form)."""
    if split_options is not None and not (isinstance(split_options, Mapping) and all(
            isinstance(k, str) and isinstance(v, Mapping) for k, v in split_options.items())):
        raise DataError(f"option 'splits' must map split names to options, such as "
                        f"{{test: {{columns: {{label: answer}}}}}}, found {split_options!r}"[:300],
                        field="splits")
    if not isinstance(strip_leaks, bool):
        raise DataError(f"option 'strip_leaks' must be true or false, found {strip_leaks!r}"[:300],
                        field="strip_leaks")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise DataError(f"option 'seed' must be an integer, found {seed!r}"[:300], field="seed")


def _check_distinct_files(files: Mapping[str, str | Path]) -> None:
    seen: dict[Path, str] = {}
    for part, file in files.items():
        first = seen.setdefault(Path(file).expanduser().resolve(), part)
        if first != part:
            raise DataError(f"the same file is given as split {first!r} and split {part!r}: "
                            f"the {part} items would be training items; give only the training "
                            f"file and hold out a test split (--holdout 0.1)", file=str(file),
                            field="split")


def hold_out(examples: Mapping[str, list[Example]], share: float,
             seed: int) -> dict[str, list[Example]]:
    """{train, test}: a seeded `share` of the only split's questions moved to `test`; the rows
    of one question (several rationales) stay together, file order is kept. A question is its
    stem with its choices (cotdistill.examples.question_id)."""
    if list(examples) != ["train"]:
        raise DataError(f"--holdout needs exactly one split named train, found "
                        f"{', '.join(examples)}", field="holdout")
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 < share < 1:
        raise DataError(f"--holdout must be a share between 0 and 1, found {share!r}",
                        field="holdout")
    rows = examples["train"]
    questions = list(dict.fromkeys(question_id(e) for e in rows))
    n_test = max(1, round(share * len(questions)))
    if n_test >= len(questions):
        raise DataError(f"--holdout {share} of {len(questions)} questions leaves no training "
                        f"question", field="holdout")
    test = set(random.Random(seed).sample(questions, n_test))
    return {"train": [e for e in rows if question_id(e) not in test],
            "test": [e for e in rows if question_id(e) in test]}


def one_row_per_question(examples: Sequence[Example]) -> list[Example]:
    """The first row of every question, in file order; the kept row counts the rows dropped
    after it in `meta["duplicates_dropped"]`. A test item scored once per rationale would count
    one question several times."""
    kept: dict[str, int] = {}
    out: list[Example] = []
    dropped: Counter = Counter()
    for e in examples:
        qid = question_id(e)
        if qid in kept:
            dropped[kept[qid]] += 1
            continue
        kept[qid] = len(out)
        out.append(e)
    return [dataclasses.replace(e, meta={**e.meta, "duplicates_dropped": dropped[i]})
            if dropped[i] else e for i, e in enumerate(out)]


def _stripped(example: Example) -> Example:
    return dataclasses.replace(example, rationale=strip_leaks_of(example))


def import_release(release: str, folder: str | Path, out_dir: str | Path, *,
                   splits: Sequence[str] | None = None, name: str | None = None,
                   max_rationale: int | None = None, **options: Any) -> Path:
    """A set from a published release in a folder laid out like ../shared/data/<release>;
    rationales longer than `max_rationale` characters (default: max_rationale_chars()) refused."""
    from cotdistill.data.releases import release_teacher

    spec = DATASETS.get(release)
    if spec is None or spec.folder is None:
        known = ", ".join(n for n, s in DATASETS.items() if s.folder)
        raise DataError(f"unknown release {release!r}; known: {known}", field="release")
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        raise DataError(f"unknown option {unknown[0]!r} for release {release!r}; accepted: "
                        f"{', '.join(spec.options) or 'none'}", field=unknown[0])
    folder, options = Path(folder).expanduser(), {**spec.options, **options}
    if not folder.is_dir():
        raise DataError("release folder not found", file=str(folder))
    examples = {part: list(spec.loader(folder, part, **options)) for part in (splits or spec.splits)}
    check_rationale_lengths(examples, max_rationale or max_rationale_chars(), folder)
    records = [record_of(example, part) for part, exs in examples.items() for example in exs]
    teacher, gold = release_teacher(release, options)
    dataset = {"name": release, "folder": str(folder), "options": options}
    origin = Origin("release", dataset, {"name": teacher}, gold_conditioned=gold,
                    has_teacher=any(r["teacher_label"] is not None for r in records))
    return write_rationale_set(out_dir, records, origin, name=name)


# --- comparing -------------------------------------------------------------------------------

def compare_sets(a: str | Path | RationaleSet, b: str | Path | RationaleSet) -> dict[str, Any]:
    """Two sets of the same dataset side by side: sizes, rationale lengths, accuracy against
    gold, overlap of (split, id) keys, and agreement of the teacher labels on the shared ones."""
    set_a, set_b = (s if isinstance(s, RationaleSet) else open_rationale_set(s) for s in (a, b))
    keyed_a, keyed_b = _keyed(set_a), _keyed(set_b)
    shared = [k for k in keyed_a if k in keyed_b]
    pairs = [(keyed_a[k], keyed_b[k]) for k in shared]
    union = len(keyed_a) + len(keyed_b) - len(shared)
    return {
        "a": summarize_set(set_a), "b": summarize_set(set_b),
        "same_dataset": set_a.provenance["dataset"].get("name")
        == set_b.provenance["dataset"].get("name"),
        "shared": len(shared), "only_a": len(keyed_a) - len(shared),
        "only_b": len(keyed_b) - len(shared), "id_jaccard": len(shared) / union,
        "gold_mismatches": sum(1 for x, y in pairs if x["label"] != y["label"]),
        **_agreement(pairs)}


def summarize_set(rs: RationaleSet) -> dict[str, Any]:
    """One set's numbers for comparison."""
    words = [len(r["rationale"].split()) for r in rs.records if r["rationale"]]
    p = rs.provenance
    return {"name": p["name"], "content_hash": p["content_hash"], "n": len(rs.records),
            "splits": p["splits"], "teacher_accuracy": p["teacher_accuracy"],
            "n_unparsed": p["n_unparsed"], "n_with_rationale": len(words),
            "rationale_words_mean": statistics.fmean(words) if words else None,
            "rationale_words_median": statistics.median(words) if words else None}


def _keyed(rs: RationaleSet) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["split"], r["id"]): r for r in rs.records}


def _agreement(pairs: list[tuple[dict, dict]]) -> dict[str, Any]:
    """Teacher-label agreement and joint correctness over the shared examples."""
    labelled = [(x, y) for x, y in pairs
                if x["teacher_label"] is not None and y["teacher_label"] is not None]
    agree = sum(1 for x, y in labelled if labels_equal(x["kind"], x["teacher_label"],
                                                       y["teacher_label"]))
    right = Counter((bool(x["teacher_correct"]), bool(y["teacher_correct"])) for x, y in pairs)
    n = len(pairs) or None                                   # None: no shared examples
    correct_a = sum(1 for x, _ in pairs if x["teacher_correct"])
    correct_b = sum(1 for _, y in pairs if y["teacher_correct"])
    return {"n_both_labelled": len(labelled),
            "teacher_agreement": agree / len(labelled) if labelled else None,
            "accuracy_a_on_shared": correct_a / n if n else None,
            "accuracy_b_on_shared": correct_b / n if n else None,
            "both_correct": right[(True, True)], "only_a_correct": right[(True, False)],
            "only_b_correct": right[(False, True)], "neither_correct": right[(False, False)]}
