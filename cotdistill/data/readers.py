"""File mechanics shared by every loader: strict reading with file/row/field in every error.

    text = read_text(path)                       # UTF-8 (BOM allowed), never empty
    for where, record in read_jsonl(path):       # JSON Lines, one (Where, dict) per record
        question = where.text(record, "question")   # DataError naming file, row and field
    for where, record in read_keyed_object(path): ...   # MaRio's one-object {"0": {...}, ...}
    header, rows = read_table(path, ["Question", "Label"], "\\t")   # rows: (Where, dict)
    cots = read_shards(folder, "train", n_items=9741, items_file="cqa_train.json")
    rationale, answer = cut_cot(cot, "So the answer is")

Row numbers: JSON Lines rows are file line numbers; table rows are 1-based data rows (header
excluded); JSON arrays and keyed objects use the element index from 0. Every message says which.

JSON goes through cotdistill.safe_load: a key written twice in one object is an error naming the
key and the row (the last one would silently win), nesting deeper than MAX_JSON_DEPTH is refused
before parsing, and a whole-file JSON document larger than MAX_JSON_BYTES is refused (JSON Lines
is read line by line instead, each line at most MAX_LINE_BYTES).
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from cotdistill.examples import LETTERS
from cotdistill.errors import DataError
from cotdistill.safe_load import ParseError, load_json

MAX_JSON_BYTES = 512 << 20
"""A whole-file JSON document is parsed at once (about 10x its size in memory): above this, JSON
Lines, which is read one line at a time, is the way."""
MAX_LINE_BYTES = 64 << 20
"""One line of a JSON Lines or table file."""
MAX_JSON_DEPTH = 64
"""Nesting of arrays and objects in one record: published datasets use fewer than 8 levels."""

DELIMITER_NAMES = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}


@dataclass(frozen=True)
class Where:
    """A record's place: its file, its row number and what that number counts."""

    file: Path | str
    row: int
    note: str  # e.g. "line 4 of the JSON Lines file"

    def error(self, message: str, field: str | None = None) -> DataError:
        return DataError(f"{message} ({self.note})", file=str(self.file), row=self.row,
                         field=field)

    def text(self, record: Mapping[str, Any], field: str, *, optional: bool = False) -> str | None:
        """`record[field]` stripped; DataError if missing, empty or not text (None if optional)."""
        if field not in record:
            if optional:
                return None
            raise self.error("missing field", field)
        value = record[field]
        if value is None or (isinstance(value, str) and not value.strip()):
            if optional:
                return None
            raise self.error("empty value", field)
        if not isinstance(value, str):
            raise self.error(f"expected text, found {type(value).__name__}", field)
        return value.strip()


def read_text(path: Path, max_bytes: int | None = None) -> str:
    """The whole file as text; DataError if missing, empty, larger than `max_bytes` or not UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", file=str(path))
    if max_bytes is not None and path.stat().st_size > max_bytes:
        raise DataError(f"the file is {path.stat().st_size / (1 << 20):,.0f} MiB, more than the "
                        f"{max_bytes >> 20:,} MiB a whole-file JSON document may have; write it as "
                        f"JSON Lines (one record per line, read line by line)", file=str(path))
    data = path.read_bytes()
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise DataError("the file is UTF-16, not UTF-8; re-save it as UTF-8", file=str(path))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DataError(f"not UTF-8: byte 0x{data[e.start]:02x} on line {line} (row = line "
                        f"number); re-save the file as UTF-8", file=str(path), row=line) from None
    if not text.strip():
        raise DataError("file is empty", file=str(path))
    return text


def read_jsonl(path: Path) -> list[tuple[Where, dict]]:
    """(Where, record) for every non-blank line of a JSON Lines file; row = line number."""
    records = []
    # split on '\n' only: str.splitlines() would also split inside strings holding U+2028 & co.
    for line_no, line in enumerate(read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        record = parse_jsonl_line(line, path, line_no)
        _check_jsonl_record(record, path, line_no)
        records.append((Where(Path(path), line_no, f"line {line_no} of the JSON Lines file"),
                        record))
    return records


def parse_jsonl_line(line: str, path: Path, line_no: int, hint: str = "") -> Any:
    """One line of a JSON Lines file, or DataError naming the file and the line (`hint`: what else
    the file could be read as)."""
    if len(line) > MAX_LINE_BYTES:
        raise DataError(f"line {line_no} is longer than {MAX_LINE_BYTES >> 20} MiB",
                        file=str(path), row=line_no)
    try:
        return load_json(line, max_depth=MAX_JSON_DEPTH)
    except ParseError as e:
        problem = str(e)
        if problem.startswith("not valid JSON ("):
            problem = problem.split(" at line ", 1)[0].replace("not valid JSON (", "")
            raise DataError(f"line {line_no} is not valid JSON ({problem}); JSON Lines needs one "
                            f"JSON object per line{hint}", file=str(path), row=line_no) from None
        raise DataError(f"line {line_no}: {problem}", file=str(path), row=line_no) from None


def _check_jsonl_record(record: Any, path: Path, line_no: int) -> None:
    if not isinstance(record, dict):
        raise DataError(f"line {line_no} holds a JSON {type(record).__name__}, not an object; "
                        f"JSON Lines needs one object per line", file=str(path), row=line_no)
    if record and all(k.isdigit() and isinstance(v, dict) for k, v in record.items()):
        raise DataError(f"line {line_no} is one JSON object keyed '0', '1', … holding "
                        f"{len(record)} records, not JSON Lines; read it as a keyed object",
                        file=str(path), row=line_no)


def read_json(path: Path) -> Any:
    """A file holding one JSON value (a key written twice is named with its array element or
    record, and its line)."""
    text = read_text(path, MAX_JSON_BYTES)
    try:
        return load_json(text, max_depth=MAX_JSON_DEPTH)
    except ParseError as e:
        where = _element_of(text) if "written twice" in str(e) else None
        if where is None:
            raise DataError(str(e), file=str(path), row=e.line) from None
        index, line = where
        raise DataError(f"element {index} from 0, on line {line}: {e}", file=str(path),
                        row=index) from None


_SKIP = re.compile(r"[ \t\r\n,]*")


def _element_of(text: str) -> tuple[int, int] | None:
    """(index from 0, first line) of the first top-level element of an array (or value of an
    object) that holds a key written twice; None if the duplicate is at the top level itself.
    Only called after a failed parse, to say where."""
    decoder = json.JSONDecoder(object_pairs_hook=_no_duplicates)
    at = _SKIP.match(text).end()
    if text[at:at + 1] not in ("[", "{"):
        return None
    keyed, at, index = text[at] == "{", at + 1, 0
    while True:
        at = _SKIP.match(text, at).end()
        if text[at:at + 1] in ("]", "}", ""):
            return None
        if keyed:                                  # "key": value
            _, at = decoder.raw_decode(text, at)
            at = _SKIP.match(text, text.index(":", at) + 1).end()
        try:
            _, end = decoder.raw_decode(text, at)
        except ParseError:
            return index, text.count("\n", 0, at) + 1
        at, index = end, index + 1


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ParseError("duplicate key")
    return dict(pairs)


def read_keyed_object(path: Path) -> list[tuple[Where, dict]]:
    """(Where, record) from a MaRio file: ONE JSON object {"0": {...}, "1": {...}, ...}."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataError(f"expected one JSON object keyed '0', '1', …, found a JSON "
                        f"{type(data).__name__}", file=str(path))
    records = []
    for index, (key, record) in enumerate(data.items()):
        if key != str(index):
            raise DataError(f"record key {key!r} out of order: expected {str(index)!r} "
                            f"(row = record index from 0)", file=str(path), row=index)
        if not isinstance(record, dict):
            raise DataError(f"record {key!r} is not a JSON object (row = record index from 0)",
                            file=str(path), row=index)
        records.append((Where(Path(path), index, f"record \"{key}\", row = record index from 0"),
                        record))
    return records


def read_table(path: Path, columns: Sequence[str], delimiter: str, *,
               quoting: int = csv.QUOTE_MINIMAL) -> tuple[list[str], list[tuple[Where, dict]]]:
    """Header and (Where, {column: cell}) rows of a CSV/TSV file that has every one of `columns`.

    The MaRio TSV files are not quoted (cells start with a literal '"'): read them with
    quoting=csv.QUOTE_NONE, or the csv module eats those quotes.
    """
    text = read_text(path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting,
                        strict=True)
    try:
        header = [h.strip() for h in next(reader)]
        check_header(header, columns, path, delimiter, text.split("\n", 1)[0].rstrip("\r"))
        rows = _table_rows(reader, header, path, delimiter)
    except csv.Error as e:
        raise DataError(f"malformed table on file line {reader.line_num} (row = file line): {e}",
                        file=str(path), row=reader.line_num) from None
    if not rows:
        raise DataError("file has a header but no data rows", file=str(path))
    return header, rows


def _table_rows(reader: Iterator[list[str]], header: list[str], path: Path,
                delimiter: str) -> list[tuple[Where, dict]]:
    rows = []
    for cells in reader:
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue
        row = len(rows) + 1
        where = Where(Path(path), row,
                      f"data row {row} from 1, header excluded; file line {reader.line_num}")
        if len(cells) != len(header):
            name = DELIMITER_NAMES.get(delimiter, repr(delimiter))
            raise where.error(f"expected {len(header)} {name}-separated cells like the header, "
                              f"found {len(cells)}")
        rows.append((where, dict(zip(header, cells))))
    return rows


def check_header(header: list[str], columns: Sequence[str], path: Path, delimiter: str,
                 first_line: str) -> None:
    """DataError naming the first of `columns` missing from a table's header row."""
    missing = [c for c in columns if c not in header]
    if not missing:
        return
    name = DELIMITER_NAMES.get(delimiter, repr(delimiter))
    found = first_line if len(header) == 1 else ", ".join(header)
    hint = ""
    others = [d for d in DELIMITER_NAMES if d != delimiter and d in first_line]
    if len(header) == 1 and others:
        hint = (f"; the header looks {DELIMITER_NAMES[others[0]]}-separated, "
                f"re-save the file with {name}s")
    raise DataError(f"expected {name}-separated columns {', '.join(columns)}, found "
                    f"{found!r}{hint}", file=str(path), row=0, field=missing[0])


def read_shards(folder: Path, split: str, n_items: int, items_file: str) -> list[str]:
    """Rationale strings of `llm/<split>_CoT_<i>.json`, concatenated in shard order.

    The shards are aligned by position with the items: shard i covers items i*size … (i+1)*size-1,
    so every shard but the last must have the size of shard 0, and the total must be `n_items`.
    """
    paths = _shard_paths(folder, split)
    shards = [_read_shard(path) for path in paths]
    size = len(shards[0])
    for path, shard in zip(paths[:-1], shards[:-1]):
        if len(shard) != size:
            raise DataError(f"llm/{path.name} has {len(shard)} rationales but llm/{paths[0].name} "
                            f"has {size}: only the last shard may be shorter, or the rationales "
                            f"no longer line up with the items of {items_file}", file=str(path))
    cots = [cot for shard in shards for cot in shard]
    if len(cots) != n_items:
        raise DataError(f"llm/{split}_CoT_*.json has {len(cots)} rationales for {n_items} items "
                        f"in {items_file}; they are aligned by position, so the counts must match",
                        file=str(folder / "llm"))
    return cots


def _shard_paths(folder: Path, split: str) -> list[Path]:
    found = {}
    for path in (folder / "llm").glob(f"{split}_CoT_*.json"):
        match = re.fullmatch(rf"{re.escape(split)}_CoT_(\d+)\.json", path.name)
        if match:
            found[int(match.group(1))] = path
    if not found:
        raise DataError(f"no rationale shards llm/{split}_CoT_<i>.json", file=str(folder / "llm"))
    missing = [i for i in range(max(found) + 1) if i not in found]
    if missing:
        raise DataError(f"shard llm/{split}_CoT_{missing[0]}.json is missing but later shards "
                        f"exist; the shards must be numbered 0, 1, … without gaps",
                        file=str(folder / "llm"))
    return [found[i] for i in sorted(found)]


def _read_shard(path: Path) -> list[str]:
    data = read_json(path)
    if not isinstance(data, list):
        raise DataError(f"expected a JSON array of strings, found a JSON {type(data).__name__}",
                        file=str(path))
    for index, cot in enumerate(data):
        if not isinstance(cot, str) or not cot.strip():
            problem = "empty value" if isinstance(cot, str) else f"a {type(cot).__name__}"
            raise DataError(f"{problem} at array index {index} (row = array index from 0); "
                            f"every element must be a non-empty rationale string",
                            file=str(path), row=index)
    return data


def cut_cot(text: str, marker: str, stop: str = "Q:") -> tuple[str | None, str | None]:
    """(rationale, answer part) of a few-shot CoT completion.

    The text is cut at the first `stop` (the model's hallucinated next few-shot question), then
    split at the first `marker` ('So the answer is'). A completion that never reaches the marker
    (truncated, looping) has neither: (None, None).
    """
    head = text.split(stop, 1)[0]
    rationale, found, answer = head.partition(marker)
    if not found:
        return None, None
    return rationale.strip() or None, answer.strip() or None


def answer_letter(answer: str | None, n_choices: int) -> str | None:
    """The one choice letter written '(x)' in `answer`; None if none, several, or out of range."""
    if not answer:
        return None
    letters = {m.lower() for m in re.findall(r"\(([A-Za-z])\)", answer)}
    if len(letters) != 1:
        return None
    letter = letters.pop()
    return letter if letter in LETTERS[:n_choices] else None
