"""The generic importer (registry name `file`): your own files as examples, in the layouts that
published rationale releases use.

    load_examples("file", "train", path="my_train.csv",
                  columns={"question": "q", "choices": "options", "label": "answer"},
                  choices_sep="|", label_format="text")
    load_examples("file", "test", paths={"train": "a.jsonl", "test": "b.json"})
    load_examples("file", "train", path="cqa.tsv", header=False, quoting=False,
                  columns={"question": "0", "label": "1"}, embedded_choices=True)

Options (every one has a CLI flag in `cotdistill data import --help`):
- `path` (one file) or `paths` ({split: file}); relative to the working directory on the command
  line, full paths inside the allowed roots for jobs (cotdistill.paths); `~` is not expanded;
- `format`: 'jsonl' | 'json' (an array of objects, or an object keyed by row number or id) |
  'csv' | 'tsv' (default: from the extension; .json is tried as JSON, then as JSON Lines);
- `header` (tables; False: columns are positions "0", "1", …), `quoting` (False: cells that begin
  with a literal '"'), `unescape` (literal '\\n' -> newline);
- `columns`: our field -> the file's column or a path (`question.stem`,
  `question.choices[].text`), for FIELDS; without an id column the row number (or the key of a
  keyed object) is the id;
- `kind`: 'multiple_choice' (default) | 'yes_no' | 'numeric';
- `choices_sep` (a choices cell that is text), `embedded_choices` (choices written inside the
  question: `(a) … (b) …`, `A. … B. …`, `Answer Choices: (A) …`, `Options:\\n- …`; see
  cotdistill.data.choices: the last options block, markers stripped, a gap in the letters refused);
- `label_format` (multiple choice): see cotdistill.data.labels.LABEL_FORMATS (default letter; a
  text label is matched exactly, else up to case and spaces, and refused when ambiguous);
- `teacher_correct`: a column of true/false flags "was the teacher right", distinct from
  `teacher_label` (a boolean column mapped to teacher_label is refused);
- `rationale_cut`: marker(s) such as "Thus, the answer is": the rationale keeps what comes
  before the first one (raw teacher completions); a row without any marker keeps its text whole
  and is counted (`meta["cut"] = "missed"`, reported at import and in the data report);
- `placeholders`: what to do with placeholder rationales (`nan`, `-`, one word, empty: see
  cotdistill.data.placeholders): drop (default), keep or error; each is noted in
  `meta["placeholder"]`;
- `rationales`: another file (or a list of numbered files, concatenated) holding the rationales,
  aligned by position (a JSON array of strings, or lines of text) or by id (objects with
  `id` and `rationale`); a rationale that is a list gives one example per rationale, ids
  `<id>#<k>`. A side-file rationale that embeds its question ("Q: …" / "Question: …" lines, or
  a `question` key) must embed its own row's question: side files given in the wrong order
  are refused.
A question is its stem with its choices (cotdistill.examples.question_id): the rows of one
question share it, whether they come from one row's list of rationales or from several rows.
Every problem raises DataError with the file, the row and the file's column name; the commonest
first mistakes (a keyed object in a .jsonl, text labels, yes/no data as multiple choice, a table
without a header) name the option that fixes them.
Text holding a NUL character or a lone surrogate (neither can be stored in PostgreSQL or written
as UTF-8) is refused; more than 26 choices (the letters a-z) is refused under the choices column;
the same choice twice in one row is allowed and counted by the data report (a warning).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from cotdistill.errors import ChoiceError
from cotdistill.data.choices import split_choices
from cotdistill.data.labels import (LABEL_FORMATS, looks_boolean, text_matches, to_bool, to_letter,
                                    to_yes_no)
from cotdistill.data.layouts import KEY, MISSING, pick, read_records
from cotdistill.data.placeholders import PLACEHOLDER_MODES, placeholder_reason
from cotdistill.data.readers import MAX_JSON_DEPTH, Where, read_json, read_text
from cotdistill.examples import (KINDS, LETTERS, YES_NO, Example, format_number, normalize_text, parse_number,
                                 unstorable)
from cotdistill.errors import DataError
from cotdistill.safe_load import ParseError, load_json

FIELDS = ("id", "question", "choices", "label", "rationale", "teacher_label", "teacher_correct")
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv",
           ".tab": "tsv"}
DEFAULTS: dict[str, Any] = {"path": None, "paths": None, "format": None, "columns": None,
                            "kind": "multiple_choice", "choices_sep": None, "label_format": None,
                            "header": True, "quoting": True, "unescape": False,
                            "embedded_choices": False, "rationale_cut": None, "rationales": None,
                            "placeholders": "drop"}
PATH_OPTIONS = ("path", "paths", "rationales")   # the options naming files (cotdistill.paths)


def load_file(split: str, *, path: str | Path | None = None,
              paths: Mapping[str, str | Path] | None = None, format: str | None = None,
              columns: Mapping[str, str] | None = None, kind: str = "multiple_choice",
              choices_sep: str | None = None, label_format: str | None = None,
              header: bool = True, quoting: bool = True, unescape: bool = False,
              embedded_choices: bool = False, rationale_cut: str | Sequence[str] | None = None,
              rationales: str | Path | Sequence[str | Path] | None = None,
              placeholders: str = "drop") -> list[Example]:
    """The examples of `split` read from the file the options name."""
    check_option_types({"format": format, "header": header, "quoting": quoting, "unescape": unescape})
    file = _pick_path(split, path, paths)
    fmt = _format(file, format)
    return read_mapped(
        lambda required: read_records(file, fmt, header=header, quoting=quoting,
                                      unescape=unescape, required=required),
        columns=columns, kind=kind, choices_sep=choices_sep, label_format=label_format,
        embedded_choices=embedded_choices, rationale_cut=rationale_cut, rationales=rationales,
        placeholders=placeholders)


def read_mapped(records: Callable[[list[str]], Iterable[tuple[Where, dict]]], *,
                columns: Mapping[str, str] | None = None, kind: str = "multiple_choice",
                choices_sep: str | None = None, label_format: str | None = None,
                embedded_choices: bool = False, rationale_cut: str | Sequence[str] | None = None,
                rationales: str | Path | Sequence[str | Path] | None = None,
                placeholders: str = "drop") -> list[Example]:
    """Examples from records under the column mapping; `records(required columns)` yields them
    (files here, Hugging Face rows in cotdistill.data.hub). Options are load_file's."""
    check_option_types({"kind": kind, "choices_sep": choices_sep, "label_format": label_format,
                        "embedded_choices": embedded_choices, "rationale_cut": rationale_cut,
                        "rationales": rationales})
    mapping, named = _columns(columns)
    label_format = _label_format(kind, label_format)
    if placeholders not in PLACEHOLDER_MODES:
        raise DataError(f"unknown placeholders mode {placeholders!r}; expected one of "
                        f"{', '.join(PLACEHOLDER_MODES)}", field="placeholders")
    if embedded_choices and choices_sep:
        raise DataError("give either embedded_choices (choices inside the question) or "
                        "choices_sep (a choices cell), not both", field="embedded_choices")
    if "choices" in named and mapping["choices"] == mapping["question"] and not embedded_choices:
        raise DataError(f"the choices column is the question column {mapping['question']!r}: "
                        f"splitting it would make the question a choice; use embedded_choices "
                        f"(--embedded-choices) instead", field="choices")
    reader = _Reader(mapping, kind, label_format, choices_sep, embedded_choices,
                     _cuts(rationale_cut), placeholders)
    required = _required(mapping, named, kind, embedded_choices, rationales is not None)
    checked = _checked(records(required), required, mapping, kind)
    if rationales is not None:
        checked = _with_rationales(list(checked), rationales, mapping)
    examples: list[Example] = []
    first: dict[str, Where] = {}
    for where, record in checked:
        for example in reader.examples(where, record):
            seen = first.setdefault(example.id, where)
            if seen is not where:
                raise where.error(f"duplicate id {example.id!r}, first seen at row {seen.row}; "
                                  f"ids must be unique within a split", mapping["id"])
            examples.append(example)
    return examples


_BOOLEAN = ("header", "quoting", "unescape", "embedded_choices")
_TEXT = ("format", "kind", "choices_sep", "label_format")


def check_option_types(options: Mapping[str, Any]) -> None:
    """DataError naming the first option whose value has the wrong type (a mapping file or a form
    can hold anything): flags true or false, names text, rationale_cut text or a list of text,
    rationales a file or a list of files."""
    for name, value in options.items():
        if name in _BOOLEAN and not isinstance(value, bool):
            raise DataError(f"option {name!r} must be true or false, found {_short(value)}", field=name)
        if name in _TEXT and value is not None and not isinstance(value, str):
            raise DataError(f"option {name!r} must be text, found {_short(value)}", field=name)
        if name in ("rationale_cut", "rationales") and value is not None:
            items = [value] if isinstance(value, (str, Path)) else value
            if not isinstance(items, (list, tuple)) or not items or \
                    not all(isinstance(v, (str, Path)) and str(v) for v in items):
                what = "text or a list of text" if name == "rationale_cut" else "a file or a list of files"
                raise DataError(f"option {name!r} must be {what}, found {_short(value)}", field=name)


def _pick_path(split: str, path, paths) -> Path:
    if (path is None) == (paths is None):
        raise DataError("give exactly one of the options 'path' (one file) or 'paths' "
                        "({split: file})", field="path")
    if path is not None:
        return Path(path)
    if not isinstance(paths, Mapping) or not paths:
        raise DataError(f"option 'paths' must map split names to files, found {paths!r}",
                        field="paths")
    if split not in paths:
        raise DataError(f"no file for split {split!r}; valid splits: {', '.join(paths)}",
                        field="split")
    return Path(paths[split])


def _format(file: Path, fmt: str | None) -> str:
    if fmt is None:
        fmt = FORMATS.get(file.suffix.lower())
        if fmt is None:
            raise DataError("cannot tell the format from the extension; set the option "
                            "format: jsonl, json, csv or tsv", file=str(file), field="format")
        if fmt == "json" and _is_jsonl(file):
            fmt = "jsonl"
    return fmt


def _is_jsonl(file: Path) -> bool:
    """A .json file whose first line is a whole JSON object (JSON Lines named .json)."""
    if not file.is_file():
        return False
    with file.open(encoding="utf-8-sig", errors="replace") as f:
        first = f.readline(1 << 20).strip()
    try:
        value = load_json(first, max_depth=MAX_JSON_DEPTH)
    except ParseError:
        return False
    return isinstance(value, dict) and not (value and all(isinstance(v, dict)
                                                          for v in value.values()))


def _columns(columns: Mapping[str, str] | None) -> tuple[dict[str, str], tuple[str, ...]]:
    """(our field -> the file's column, the fields named explicitly)."""
    if columns is not None and not isinstance(columns, Mapping):
        raise DataError(f"'columns' must map our fields to column names, found {_short(columns)}",
                        field="columns")
    columns = {k: str(v) if isinstance(v, int) else v for k, v in dict(columns or {}).items()}
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


def _cuts(rationale_cut: str | Sequence[str] | None) -> tuple[str, ...]:
    cuts = (rationale_cut,) if isinstance(rationale_cut, str) else tuple(rationale_cut or ())
    if any(not isinstance(c, str) or not c for c in cuts):
        raise DataError(f"rationale_cut must be non-empty text, found {rationale_cut!r}",
                        field="rationale_cut")
    return cuts


def _required(mapping: dict[str, str], named: tuple[str, ...], kind: str,
              embedded: bool, apart: bool) -> list[str]:
    """The file's columns that must exist: question, label, choices (multiple choice, unless
    embedded in the question) and any optional column named explicitly in `columns`."""
    ours = ["question", "label"]
    ours += ["choices"] if kind == "multiple_choice" and not embedded else []
    skip = ("choices", "rationale") if apart else ("choices",)  # apart: in another file
    ours += [f for f in named if f not in ours and f not in skip]
    return [mapping[f] for f in ours]


def _checked(records: Iterable[tuple[Where, dict]], required: list[str],
             mapping: dict[str, str], kind: str) -> Iterator[tuple[Where, dict]]:
    for where, record in records:
        for column in required:
            if pick(record, column) is MISSING and not (column == "id" and KEY in record):
                hint = _choices_hint(record, mapping) if column == mapping["choices"] \
                    and kind == "multiple_choice" else ""
                raise where.error(f"missing field{hint}", column)
        yield where, record


def _choices_hint(record: dict, mapping: dict[str, str]) -> str:
    """What a multiple-choice row without a choices column probably needs: --kind yes_no or
    numeric (from its label), --embedded-choices (from its question), or the column's name."""
    label = pick(record, mapping["label"])
    question = pick(record, mapping["question"])
    if isinstance(label, bool) or str(label).strip().lower() in ("yes", "no", "true", "false"):
        return (f"; the label {label!r} reads as yes/no: for yes/no data use --kind yes_no "
                f"(no choices column needed)")
    number = None if label is MISSING or isinstance(label, bool) else parse_number(str(label))
    if number is not None and not (number.is_integer() and 0 <= number <= len(LETTERS)):
        return (f"; the label {label!r} is a number: for numeric answers use --kind numeric "
                f"(no choices column needed)")
    if isinstance(question, str):
        try:
            if split_choices(question) is not None:
                return "; the question holds its choices: use --embedded-choices"
        except ChoiceError:
            return "; the question holds its choices: use --embedded-choices"
    return "; name the column that holds the choices: --column choices=COLUMN"


def _with_rationales(records: list[tuple[Where, dict]], source, mapping: dict[str, str]
                     ) -> list[tuple[Where, dict]]:
    """The records with their rationale (column `mapping['rationale']`) from another file."""
    files = [Path(source)] if isinstance(source, (str, Path)) else [Path(p) for p in source]
    items = [item for file in files for item in _rationale_items(file)]
    column = mapping["rationale"]
    if items and all(isinstance(i, dict) for _, i in items):
        by_id: dict[str, list] = {}
        for where, item in items:
            if "id" not in item or "rationale" not in item:
                raise where.error("a rationale object needs the keys 'id' and 'rationale'")
            by_id.setdefault(str(item["id"]), []).append((where, item))
        out = []
        for where, record in records:
            rid = str(pick(record, mapping["id"]) if pick(record, mapping["id"]) is not MISSING
                      else record.get(KEY, where.row))
            for place, item in by_id.get(rid, []):
                _check_embedded(place, item, where, record, mapping)
            found = [r for _, item in by_id.get(rid, []) for r in
                     (item["rationale"] if isinstance(item["rationale"], list)
                      else [item["rationale"]])]
            out.append((where, {**record, column: found if len(found) > 1 else
                                (found[0] if found else None)}))
        return out
    if len(items) != len(records):
        raise DataError(f"{len(items)} rationales in {', '.join(map(str, files))} for "
                        f"{len(records)} rows: aligned by position, the counts must match",
                        file=str(files[0]), field="rationales")
    for (where, record), (place, item) in zip(records, items):
        _check_embedded(place, item, where, record, mapping)
    return [(where, {**record, column: item}) for (where, record), (_, item) in zip(records, items)]


_EMBEDDED_QUESTION = re.compile(r"\s*(?:Q|Question)\s*:\s*(.+)", re.IGNORECASE)


def _embedded_question(item: Any) -> str | None:
    """The question a side-file rationale carries: its `question` key, or a first line
    'Q: …' / 'Question: …'; None if it carries none."""
    if isinstance(item, dict):
        question = item.get("question")
        return question if isinstance(question, str) and question.strip() else None
    if isinstance(item, str):
        match = _EMBEDDED_QUESTION.match(item.split("\n", 1)[0])
        return match.group(1) if match else None
    return None


def _check_embedded(place: Where, item: Any, where: Where, record: dict,
                    mapping: dict[str, str]) -> None:
    """DataError if the side-file rationale at `place` embeds another question than its row's."""
    embedded = _embedded_question(item)
    question = pick(record, mapping["question"])
    if embedded is None or not isinstance(question, str):
        return
    theirs, ours = normalize_text(embedded), normalize_text(question)
    if theirs and ours and (theirs.startswith(ours) or ours.startswith(theirs)):
        return
    raise place.error(f"this rationale embeds the question {embedded.strip()[:60]!r} but is "
                      f"matched to row {where.row} of {Path(str(where.file)).name}, whose question "
                      f"is {question.strip()[:60]!r}: the rationale files are in the wrong order "
                      f"or do not line up with the rows (give numbered files in number order)",
                      "rationales")


def _rationale_items(file: Path) -> list[tuple[Where, Any]]:
    if file.suffix.lower() == ".json":
        data = read_json(file)
        if not isinstance(data, list):
            raise DataError(f"expected a JSON array of rationales, found a JSON "
                            f"{type(data).__name__}", file=str(file), field="rationales")
        return [(Where(file, i, f"array element {i} from 0"), v) for i, v in enumerate(data)]
    if file.suffix.lower() in (".jsonl", ".ndjson"):
        return list(read_records(file, "jsonl"))
    if not file.is_file():
        raise DataError("file not found", file=str(file), field="rationales")
    lines = read_text(file).rstrip("\n").split("\n")
    return [(Where(file, i, f"line {i}"), line) for i, line in enumerate(lines, start=1)]


class _Reader:
    """Turns one record into Examples under the importer's options."""

    def __init__(self, mapping: dict[str, str], kind: str, label_format: str | None,
                 choices_sep: str | None, embedded: bool, cuts: tuple[str, ...],
                 placeholders: str = "drop"):
        self.col, self.kind, self.label_format = mapping, kind, label_format
        self.choices_sep, self.embedded, self.cuts = choices_sep, embedded, cuts
        self.placeholders = placeholders

    def examples(self, where: Where, record: dict) -> list[Example]:
        """One example, or one per rationale when the rationale is a list."""
        flat = {c: v for c in set(self.col.values()) if (v := pick(record, c)) is not MISSING}
        _check_text(where, flat)
        question = where.text(flat, self.col["question"])
        choices = self.choices(where, flat)
        if self.embedded:
            question, choices = self.split(where, question)
        label = self.label(where, flat, "label", choices)
        teacher = self.label(where, flat, "teacher_label", choices, optional=True)
        meta = {"file": str(where.file), "row": where.row}
        flag = self.flag(where, flat)
        if flag is not None:
            meta["teacher_correct"] = flag
        base = self.id(where, record, flat)
        rationales = self.rationales(where, flat)
        many = isinstance(flat.get(self.col["rationale"]), list)
        return [Example(id=f"{base}#{k}" if many else base, question=question, choices=choices,
                        kind=self.kind, label=label, rationale=r, teacher_label=teacher,
                        meta={**meta, **notes})
                for k, (r, notes) in enumerate(rationales)]

    def id(self, where: Where, record: dict, flat: dict) -> str:
        value = flat.get(self.col["id"])
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if self.col["id"] not in flat:
            return str(record.get(KEY, where.row))
        return where.text(flat, self.col["id"])

    def split(self, where: Where, question: str) -> tuple[str, tuple[str, ...] | None]:
        if self.kind != "multiple_choice":
            return question, self.choices(where, {})
        try:
            parsed = split_choices(question)
        except ChoiceError as e:
            raise where.error(str(e), self.col["question"]) from None
        if parsed is None:
            raise where.error(f"no choices found in the question text {question[:80]!r}; "
                              f"embedded choices look like '(a) … (b) …', 'A. … B. …', "
                              f"'Answer Choices: (A) …' or 'Options:\\n- …'", self.col["question"])
        return parsed

    def choices(self, where: Where, record: dict) -> tuple[str, ...] | None:
        if self.kind == "yes_no":
            return YES_NO
        if self.kind == "numeric" or self.embedded:
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
            raise where.error(f"expected a list of at least 2 choices, found {_short(value)}", column)
        if len(value) > len(LETTERS):
            raise where.error(f"{len(value)} choices, more than the {len(LETTERS)} letters a-z "
                              f"that label them", column)
        if any(not isinstance(c, str) or not c.strip() for c in value):
            raise where.error(f"empty value: a choice is empty or not text in {_short(value)}", column)
        return tuple(c.strip() for c in value)

    def _json_list(self, where: Where, cell: str, column: str) -> Any:
        try:
            return load_json(cell, max_depth=MAX_JSON_DEPTH)
        except ParseError:
            raise where.error(f"expected the choices as a JSON list like [\"red\", \"blue\"], "
                              f"found {_short(cell)}; or set the option choices_sep", column) from None

    def rationales(self, where: Where, record: dict) -> list[tuple[str | None, dict]]:
        """(rationale, notes for meta) per rationale: notes say whether the cut missed
        (`cut`) and what placeholder text was found (`placeholder`)."""
        column = self.col["rationale"]
        if column not in record:
            return [(None, {})]
        value = record[column]
        values = value if isinstance(value, list) else [value]
        out = []
        for v in values:
            if v is not None and not isinstance(v, str):
                raise where.error(f"expected text, found {type(v).__name__}", column)
            notes: dict[str, Any] = {}
            text = self.cut(v.strip(), notes) if v and v.strip() else None
            if v:  # an empty cell or null is no rationale; anything else may be a placeholder
                text = self.placeholder(where, column, v, text, notes)
            out.append((text, notes))
        return out or [(None, {})]

    def cut(self, text: str, notes: dict[str, Any]) -> str | None:
        """The text before the first cut marker found; notes['cut'] = 'missed' when none is."""
        if self.cuts:
            notes["cut"] = "cut" if any(m in text for m in self.cuts) else "missed"
        for marker in self.cuts:
            text = text.split(marker, 1)[0]
        return text.strip() or None

    def placeholder(self, where: Where, column: str, raw: str | None, text: str | None,
                    notes: dict[str, Any]) -> str | None:
        """The rationale once placeholders are handled (drop / keep / error)."""
        reason = placeholder_reason(text)
        if reason is None:
            return text
        notes["placeholder"] = (raw or "").strip()[:40]
        if self.placeholders == "error":
            raise where.error(f"the rationale {(raw or '').strip()[:40]!r} is a placeholder "
                              f"({reason}), not a rationale; --placeholders drop imports the row "
                              f"without it, --placeholders keep keeps the text", column)
        return text if self.placeholders == "keep" else None

    def flag(self, where: Where, record: dict) -> bool | None:
        column = self.col["teacher_correct"]
        value = record.get(column)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        flag = to_bool(value)
        if flag is None:
            raise where.error(f"expected a true/false flag, found {value!r}", column)
        return flag

    def label(self, where: Where, record: dict, field: str, choices, *,
              optional: bool = False) -> str | None:
        column = self.col[field]
        value = record.get(column)
        if value is None or (isinstance(value, str) and not value.strip()):
            if optional:
                return None
            raise where.error("missing field" if column not in record else "empty value", column)
        if field == "teacher_label" and looks_boolean(value) \
                and not looks_boolean(record.get(self.col["label"])):
            raise where.error(f"teacher_label holds the flag {value!r}, not an answer: a "
                              f"'was the teacher right' column goes to teacher_correct "
                              f"(--column teacher_correct={column})", column)
        if self.kind == "yes_no":
            word = to_yes_no(value)
            if word is None:
                raise where.error(f"label not among the choices: {value!r} is not yes or no "
                                  f"(nor true/false)", column)
            return word
        if self.kind == "numeric":
            number = None if isinstance(value, bool) else parse_number(str(value))
            if number is None:
                raise where.error(f"expected a number, found {value!r}", column)
            return format_number(number)
        letter = to_letter(value, self.label_format, choices)
        if letter is None:
            raise where.error(_label_problem(value, self.label_format, choices), column)
        return letter


def _label_problem(value: Any, label_format: str, choices: Sequence[str]) -> str:
    """Why a multiple-choice label names no choice, with the option that fixes a likely mistake."""
    if label_format == "text":
        matches = text_matches(str(value), choices)
        if len(matches) > 1:
            named = ", ".join(f"({LETTERS[i]}) {choices[i]!r}" for i in matches)
            return (f"the text label {value!r} matches several choices up to case and spaces: "
                    f"{named}, and none exactly; fix the label or the choices")
        return f"label not among the choices: {value!r} is not one of {list(choices)}"
    problem = f"label not among the choices: {value!r} is not {_expected(label_format, choices)}"
    if label_format != "letter" or isinstance(value, bool):
        return problem
    if str(value).strip().isdigit():
        return f"{problem}; for indexes use --label-format index (from 0) or index1 (from 1)"
    if to_letter(value, "sentence", choices) is not None:
        return f"{problem}; for names like 'Sentence A' use --label-format sentence"
    if text_matches(str(value), choices) or len(str(value).split()) > 1 \
            or len(str(value).strip()) > 3:
        return f"{problem}; the labels look like choice texts: use --label-format text"
    return problem
def _check_text(where: Where, flat: Mapping[str, Any]) -> None:
    """DataError naming the row and column of the first text holding a NUL character or a lone
    surrogate: PostgreSQL refuses NUL in text, and a surrogate cannot be written as UTF-8, so
    the set would be half-written (its folder made, its rows refused)."""
    for column, value in flat.items():
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, str):
                problem = unstorable(item)
                if problem:
                    raise where.error(f"the text holds {problem}; remove it from the file", column)
            elif isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + " …"


def _expected(label_format: str, choices: Sequence[str]) -> str:
    """What a label of this format should have been, for an error message."""
    n = len(choices)
    return {"text": f"one of {list(choices)}", "index": f"a 0-based index below {n}",
            "index1": f"a 1-based index from 1 to {n}",
            "letter": f"a letter a-{LETTERS[n - 1]}",
            "sentence": f"a name like 'Sentence A' … 'Sentence {LETTERS[n - 1].upper()}'"
            }[label_format]
