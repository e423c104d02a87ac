"""Reading a rationale set folder (registry name `rationale-set`), and its on-disk format.

    load_examples("rationale-set", "train", path="/srv/sets/cqa-smollm2")
    load_examples("rationale-set", "train", path="cqa-smollm2")    # a name under sets_root()

A bare name (no separator, see cotdistill.paths.is_bare_name) is only ever looked up under
sets_root(), never in the working folder; `~` is not expanded.

A set folder holds `examples.jsonl` (one record per example, keys `RECORD_KEYS`) and
`provenance.json` (who made it, how, and `content_hash`). The hash is SHA-256 over the records
serialized canonically (sorted keys, compact JSON, one line each, in file order), so reformatting
the file keeps it and changing any field of any example changes it. Loading verifies the hash:
a set is immutable, and an edited one is refused. Writing sets lives in `cotdistill.data.store`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from cotdistill.data.readers import Where, read_json, read_jsonl
from cotdistill.errors import DataError
from cotdistill.examples import Example, KINDS
from cotdistill.paths import is_bare_name

FORMAT = 1
EXAMPLES_FILE, PROVENANCE_FILE = "examples.jsonl", "provenance.json"
RECORD_KEYS = ("id", "split", "kind", "question", "choices", "label", "rationale",
               "teacher_label", "teacher_correct", "raw_output", "error")
DEFAULTS: dict[str, Any] = {"path": None}
PATH_OPTIONS = ("path",)     # a folder, or a bare set name under sets_root() (cotdistill.paths)


def sets_root() -> Path:
    """Where named rationale sets live: $COTDISTILL_HOME/rationale_sets."""
    from cotdistill.paths import home

    return home() / "rationale_sets"


def record_of(example: Example, split: str, *, raw_output: str | None = None,
              error: str | None = None) -> dict[str, Any]:
    """The JSON record of one example of a set (plain JSON types, every key of RECORD_KEYS)."""
    return {"id": example.id, "split": split, "kind": example.kind, "question": example.question,
            "choices": list(example.choices) if example.choices is not None else None,
            "label": example.label, "rationale": example.rationale,
            "teacher_label": example.teacher_label, "teacher_correct": example.teacher_correct,
            "raw_output": raw_output, "error": error}


def canonical_line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def content_hash(records: Iterable[Mapping[str, Any]]) -> str:
    """SHA-256 (hex) of the canonical serialization of the records, in order."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(canonical_line(record).encode("utf-8") + b"\n")
    return digest.hexdigest()


def resolve(path: str | Path) -> Path:
    """A set folder from a path, or from a bare name under sets_root() (never the working folder)."""
    text = str(path)
    if text.startswith("~"):
        raise DataError("a rationale set path starting with '~' is not expanded; give the set's full "
                        f"folder, or a set name under {sets_root()}", field="path")
    folder = sets_root() / text if is_bare_name(text) else Path(text)
    if not (folder / PROVENANCE_FILE).is_file():
        raise DataError(f"not a rationale set folder (no {PROVENANCE_FILE}); give the folder of "
                        f"a set, or a set name under {sets_root()}", file=str(folder),
                        field="path")
    return folder


def read_set(path: str | Path) -> tuple[Path, dict[str, Any], list[tuple[Where, dict]]]:
    """(folder, provenance, records) of a set whose content hash checks out."""
    folder = resolve(path)
    provenance = read_json(folder / PROVENANCE_FILE)
    if not isinstance(provenance, dict) or provenance.get("format") != FORMAT:
        raise DataError(f"provenance is not a format-{FORMAT} rationale set provenance",
                        file=str(folder / PROVENANCE_FILE), field="format")
    records = read_jsonl(folder / EXAMPLES_FILE)
    for where, record in records:
        missing = [k for k in RECORD_KEYS if k not in record]
        if missing:
            raise where.error("missing field", missing[0])
    found = content_hash(record for _, record in records)
    if found != provenance.get("content_hash"):
        raise DataError(f"content hash {found[:12]}… does not match the provenance's "
                        f"{str(provenance.get('content_hash'))[:12]}…: the examples were changed "
                        f"after the set was written; sets are immutable, write a new one",
                        file=str(folder / EXAMPLES_FILE), field="content_hash")
    return folder, provenance, records


def example_of(where: Where, record: Mapping[str, Any]) -> Example:
    """An Example from a record; DataError naming file, row and field if it is not valid."""
    kind = record["kind"]
    if kind not in KINDS:
        raise where.error(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}", "kind")
    choices = record["choices"]
    if choices is not None and not isinstance(choices, list):
        raise where.error(f"expected a list of choices or null, found {choices!r}", "choices")
    try:
        return Example(id=where.text(record, "id"), question=where.text(record, "question"),
                       label=record["label"], choices=choices, kind=kind,
                       rationale=where.text(record, "rationale", optional=True),
                       teacher_label=record["teacher_label"],
                       meta={"split": record["split"], "raw_output": record["raw_output"],
                             "teacher_correct": record["teacher_correct"]})
    except DataError as e:
        if e.file:
            raise
        raise where.error(str(e), e.field) from None


def load_rationale_set(split: str, *, path: str | Path | None = None) -> list[Example]:
    """The examples of one split of a rationale set, in file order."""
    if path is None:
        raise DataError("the rationale-set dataset needs the option 'path' (a set folder or a "
                        "set name)", field="path")
    _, _, records = read_set(path)
    splits = list(dict.fromkeys(record["split"] for _, record in records))
    if split not in splits:
        raise DataError(f"the rationale set has no split {split!r}; its splits: "
                        f"{', '.join(map(str, splits))}", file=str(path), field="split")
    return [example_of(where, record) for where, record in records if record["split"] == split]
