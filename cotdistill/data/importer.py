"""The generic importer (registry name `file`): your own JSONL, CSV or TSV files as examples.

    load_examples("file", "train", path="my_train.csv",
                  columns={"question": "q", "choices": "options", "label": "answer"},
                  choices_sep="|", label_format="text")
    load_examples("file", "test", paths={"train": "a.jsonl", "test": "b.jsonl"})

Options:
- `path` (one file, used for whichever split is asked) or `paths` ({split: file}); relative
  paths are relative to the working directory;
- `format`: 'jsonl' | 'csv' | 'tsv' (default: from the extension; .json is read as JSON Lines);
- `columns`: our field -> the file's column, for id, question, choices, label, rationale,
  teacher_label (default: the same names; without an id column the row number is the id);
- `kind`: 'multiple_choice' (default) | 'yes_no' | 'numeric';
- `choices_sep`: in CSV/TSV the choices cell is a JSON list unless a separator is given
  (JSONL: a list, or Hugging Face's {"label": [...], "text": [...]});
- `label_format` (multiple choice): 'letter' ('c', '(c)', 'C'; default) | 'text' (the choice's
  text) | 'index' (0-based). teacher_label is read the same way and may be empty.
Every problem raises DataError with the file, the row and the file's column name.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping

from cotdistill.data.readers import Where, read_jsonl, read_table
from cotdistill.examples import (KINDS, LETTERS, YES_NO, DataError, Example, format_number,
                                 parse_number)

FIELDS = ("id", "question", "choices", "label", "rationale", "teacher_label")
FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv",
           ".tab": "tsv"}
DELIMITERS = {"csv": ",", "tsv": "\t"}
LABEL_FORMATS = ("letter", "text", "index")
YES_NO_WORDS = {"yes": "yes", "no": "no", "true": "yes", "false": "no"}
DEFAULTS: dict[str, Any] = {"path": None, "paths": None, "format": None, "columns": None,
                            "kind": "multiple_choice", "choices_sep": None, "label_format": None}


def load_file(split: str, *, path: str | Path | None = None,
              paths: Mapping[str, str | Path] | None = None, format: str | None = None,
              columns: Mapping[str, str] | None = None, kind: str = "multiple_choice",
              choices_sep: str | None = None, label_format: str | None = None) -> list[Example]:
    """The examples of `split` read from the file the options name."""
    file = _pick_path(split, path, paths)
    fmt = _format(file, format)
    mapping, named = _columns(columns)
    label_format = _label_format(kind, label_format)
    records = _records(file, fmt, _required(mapping, named, kind))
    reader = _Reader(mapping, kind, label_format, choices_sep, fmt)
    examples = [reader.example(where, record) for where, record in records]
    _check_unique(examples, records, mapping["id"])
    return examples


def _pick_path(split: str, path, paths) -> Path:
    if (path is None) == (paths is None):
        raise DataError("give exactly one of the options 'path' (one file) or 'paths' "
                        "({split: file})", field="path")
    if path is not None:
        return Path(path).expanduser()
    if not isinstance(paths, Mapping) or not paths:
        raise DataError(f"option 'paths' must map split names to files, found {paths!r}",
                        field="paths")
    if split not in paths:
        raise DataError(f"no file for split {split!r}; valid splits: {', '.join(paths)}",
                        field="split")
    return Path(paths[split]).expanduser()


def _format(file: Path, fmt: str | None) -> str:
    if fmt is None:
        fmt = FORMATS.get(file.suffix.lower())
        if fmt is None:
            raise DataError("cannot tell the format from the extension; set the option "
                            "format: jsonl, csv or tsv", file=str(file), field="format")
    if fmt not in DELIMITERS and fmt != "jsonl":
        raise DataError(f"unknown format {fmt!r}; expected jsonl, csv or tsv", field="format")
    return fmt


def _columns(columns: Mapping[str, str] | None) -> tuple[dict[str, str], tuple[str, ...]]:
    """(our field -> the file's column, the fields named explicitly)."""
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(FIELDS))
    if unknown:
        raise DataError(f"unknown field {unknown[0]!r} in 'columns'; our fields are "
                        f"{', '.join(FIELDS)}", field="columns")
    if any(not isinstance(v, str) or not v for v in columns.values()):
        raise DataError(f"'columns' must map our fields to column names, found {columns!r}",
                        field="columns")
    return {f: columns.get(f, f) for f in FIELDS}, tuple(columns)


def _label_format(kind: str, label_format: str | None) -> str | None:
    if kind not in KINDS:
        raise DataError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}",
                        field="kind")
    if kind != "multiple_choice":
        if label_format is not None:
            raise DataError(f"label_format applies to multiple_choice only, not {kind}",
                            field="label_format")
        return None
    label_format = label_format or "letter"
    if label_format not in LABEL_FORMATS:
        raise DataError(f"unknown label_format {label_format!r}; expected one of "
                        f"{', '.join(LABEL_FORMATS)}", field="label_format")
    return label_format


def _required(mapping: dict[str, str], named: tuple[str, ...], kind: str) -> list[str]:
    """The file's columns that must exist: question, label, choices (multiple choice) and any
    optional column named explicitly in `columns`."""
    ours = ["question", "label"] + (["choices"] if kind == "multiple_choice" else [])
    ours += [f for f in named if f not in ours and f != "choices"]
    return [mapping[f] for f in ours]


def _records(file: Path, fmt: str, required: list[str]) -> list[tuple[Where, dict]]:
    if fmt == "jsonl":
        records = read_jsonl(file)
        for where, record in records:
            missing = [c for c in required if c not in record]
            if missing:
                raise where.error("missing field", missing[0])
        return records
    return read_table(file, required, DELIMITERS[fmt])[1]


class _Reader:
    """Turns one record into an Example under the importer's options."""

    def __init__(self, mapping: dict[str, str], kind: str, label_format: str | None,
                 choices_sep: str | None, fmt: str):
        self.col, self.kind, self.label_format = mapping, kind, label_format
        self.choices_sep, self.fmt = choices_sep, fmt

    def example(self, where: Where, record: dict) -> Example:
        choices = self.choices(where, record)
        return Example(
            id=self.id(where, record), question=where.text(record, self.col["question"]),
            choices=choices, kind=self.kind,
            label=self.label(where, record, "label", choices),
            rationale=where.text(record, self.col["rationale"], optional=True),
            teacher_label=self.label(where, record, "teacher_label", choices, optional=True),
            meta={"file": str(where.file), "row": where.row})

    def id(self, where: Where, record: dict) -> str:
        value = record.get(self.col["id"])
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if self.col["id"] not in record:
            return str(where.row)
        return where.text(record, self.col["id"])

    def choices(self, where: Where, record: dict) -> tuple[str, ...] | None:
        if self.kind == "yes_no":
            return YES_NO
        if self.kind == "numeric":
            return None
        column = self.col["choices"]
        value = record.get(column)
        if isinstance(value, dict) and "text" in value:  # Hugging Face {"label": …, "text": […]}
            value = value["text"]
        if isinstance(value, str) and self.choices_sep:
            value = value.split(self.choices_sep)
        elif isinstance(value, str):
            value = self._json_list(where, value, column)
        if not isinstance(value, list) or len(value) < 2:
            raise where.error(f"expected a list of at least 2 choices, found {value!r}", column)
        if any(not isinstance(c, str) or not c.strip() for c in value):
            raise where.error(f"empty value: a choice is empty or not text in {value!r}", column)
        return tuple(c.strip() for c in value)

    def _json_list(self, where: Where, cell: str, column: str) -> Any:
        try:
            return json.loads(cell)
        except json.JSONDecodeError:
            raise where.error(f"expected the choices as a JSON list like [\"red\", \"blue\"], "
                              f"found {cell!r}; or set the option choices_sep", column) from None

    def label(self, where: Where, record: dict, field: str, choices, *,
              optional: bool = False) -> str | None:
        column = self.col[field]
        value = record.get(column)
        if value is None or (isinstance(value, str) and not value.strip()):
            if optional:
                return None
            raise where.error("missing field" if column not in record else "empty value", column)
        if self.kind == "yes_no":
            return _yes_no(where, value, column)
        if self.kind == "numeric":
            return _number(where, value, column)
        return _letter(where, value, column, choices, self.label_format)


def _yes_no(where: Where, value: Any, column: str) -> str:
    word = str(value).strip().lower()
    if word not in YES_NO_WORDS:
        raise where.error(f"label not among the choices: {value!r} is not yes or no", column)
    return YES_NO_WORDS[word]


def _number(where: Where, value: Any, column: str) -> str:
    number = None if isinstance(value, bool) else parse_number(str(value))
    if number is None:
        raise where.error(f"expected a number, found {value!r}", column)
    return format_number(number)


def _letter(where: Where, value: Any, column: str, choices: tuple[str, ...],
            label_format: str) -> str:
    """The label as a letter; DataError if it does not name one of the choices."""
    n = len(choices)
    if label_format == "index":
        text = str(value).strip()
        index = int(text) if re.fullmatch(r"\d+", text) and not isinstance(value, bool) else -1
        if not 0 <= index < n:
            raise where.error(f"label not among the choices: {value!r} is not a 0-based index "
                              f"below {n}", column)
        return LETTERS[index]
    if not isinstance(value, str):
        raise where.error(f"expected text, found {type(value).__name__} {value!r}", column)
    if label_format == "text":
        return _letter_of_text(where, value.strip(), column, choices)
    match = re.fullmatch(r"\(?([A-Za-z])\)?", value.strip())
    letter = match.group(1).lower() if match else None
    if letter is None or letter not in LETTERS[:n]:
        raise where.error(f"label not among the choices: {value!r} is not a letter "
                          f"a-{LETTERS[n - 1]}", column)
    return letter


def _letter_of_text(where: Where, text: str, column: str, choices: tuple[str, ...]) -> str:
    if text in choices:
        return LETTERS[choices.index(text)]
    folded = [i for i, c in enumerate(choices) if c.casefold() == text.casefold()]
    if folded:
        return LETTERS[folded[0]]
    raise where.error(f"label not among the choices: {text!r} is not one of {list(choices)}",
                      column)


def _check_unique(examples: list[Example], records: list[tuple[Where, dict]], column: str) -> None:
    first: dict[str, Where] = {}
    for example, (where, _) in zip(examples, records):
        seen = first.setdefault(example.id, where)
        if seen is not where:
            raise where.error(f"duplicate id {example.id!r}, first seen at row {seen.row}; ids "
                              f"must be unique within a split", column)
