"""File layouts the `file` importer reads, each yielding (Where, record) one record at a time.

    for where, record in read_records(path, "json"):      # array [{…}, …] or keyed {"0": {…}}
    for where, record in read_records(path, "csv", header=False):   # record keys "0", "1", …
    pick(record, "question.choices[].text")                # nested fields by path

Formats: 'jsonl' (streamed line by line), 'json' (one array of objects, or one object keyed by
row number or id: the key becomes `_key`), 'csv' and 'tsv' (streamed; with or without a header
row; `quoting=False` reads cells that begin with a literal '"'; `unescape=True` turns the
two-character sequences `\\n` and `\\t` into real ones). Rows: JSON Lines rows are line numbers,
table rows are data rows from 1, JSON elements are indexes from 0.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any, Iterator, Sequence

from cotdistill.data.readers import MAX_LINE_BYTES, Where, check_header, parse_jsonl_line, read_json
from cotdistill.errors import DataError

LAYOUT_FORMATS = ("jsonl", "json", "csv", "tsv")
DELIMITERS = {"csv": ",", "tsv": "\t"}
MISSING = object()
KEY = "_key"  # the key of a record in a JSON object keyed by row number or id


def read_records(path: Path, fmt: str, *, header: bool = True, quoting: bool = True,
                 unescape: bool = False, required: Sequence[str] = ()) -> Iterator[tuple[Where, dict]]:
    """(Where, record) for every record of `path` read as `fmt`."""
    path = Path(path)
    if not path.is_file():
        raise DataError("file not found", file=str(path))
    if fmt == "jsonl":
        records = _jsonl(path)
    elif fmt == "json":
        records = _json(path)
    elif fmt in DELIMITERS:
        records = _table(path, DELIMITERS[fmt], header, quoting, required)
    else:
        raise DataError(f"unknown format {fmt!r}; expected one of {', '.join(LAYOUT_FORMATS)}",
                        field="format")
    for where, record in records:
        yield where, (_unescaped(record) if unescape else record)


def _unescaped(record: dict) -> dict:
    return {k: v.replace("\\n", "\n").replace("\\t", "\t") if isinstance(v, str) else v
            for k, v in record.items()}


def _lines(path: Path) -> Iterator[str]:
    """The file's lines, decoded one at a time (memory stays bounded); DataError naming the line
    of a byte that is not UTF-8, or if the file holds nothing."""
    empty = True
    with path.open("rb") as f:
        for line_no, data in enumerate(iter(lambda: f.readline(MAX_LINE_BYTES + 1), b""), start=1):
            if line_no == 1 and data[:2] in (b"\xff\xfe", b"\xfe\xff"):
                raise DataError("the file is UTF-16, not UTF-8; re-save it as UTF-8", file=str(path))
            if len(data) > MAX_LINE_BYTES:
                raise DataError(f"line {line_no} is longer than {MAX_LINE_BYTES >> 20} MiB (row = "
                                f"line number)", file=str(path), row=line_no)
            try:
                line = data.decode("utf-8-sig" if line_no == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"not UTF-8: byte 0x{data[e.start]:02x} on line {line_no} (row = "
                                f"line number); re-save the file as UTF-8", file=str(path),
                                row=line_no) from None
            empty = empty and not line.strip()
            yield line
    if empty:
        raise DataError("file is empty", file=str(path))


def _jsonl(path: Path) -> Iterator[tuple[Where, dict]]:
    first = True
    for line_no, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue
        record = parse_jsonl_line(line, path, line_no,
                                  " (a whole-file JSON array or object: --format json)")
        if not isinstance(record, dict):
            raise DataError(f"line {line_no} holds a JSON {type(record).__name__}, not "
                            f"an object", file=str(path), row=line_no)
        if first and _is_keyed(record):   # a whole file on one line: its first record tells
            raise DataError(f"line {line_no} is one JSON object keyed {_keys(record)} holding "
                            f"{len(record)} records, not JSON Lines: read the file as one JSON "
                            f"object with --format json (option format: json)", file=str(path),
                            row=line_no, field="format")
        first = False
        yield Where(path, line_no, f"line {line_no} of the JSON Lines file"), record


def _is_keyed(record: dict) -> bool:
    """A record that is really a whole file: an object whose values are all records, keyed by
    row number, or (three or more) by id with the same fields each."""
    if len(record) < 2 or not all(isinstance(v, dict) for v in record.values()):
        return False
    return all(str(k).isdigit() for k in record) or \
        (len(record) >= 3 and len({tuple(sorted(v)) for v in record.values()}) == 1)


def _keys(record: dict) -> str:
    keys = [repr(k) for k in list(record)[:2]]
    return ", ".join(keys) + ", …"


def _json(path: Path) -> Iterator[tuple[Where, dict]]:
    data = read_json(path)
    if isinstance(data, list):
        items = [(None, r) for r in data]
        note = "array element {i} from 0"
    elif isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
        items = list(data.items())
        note = "record \"{key}\", element {i} from 0"
    else:
        raise DataError(f"expected a JSON array of objects or an object keyed by row number or "
                        f"id whose values are objects, found a JSON {type(data).__name__}",
                        file=str(path))
    for i, (key, record) in enumerate(items):
        if not isinstance(record, dict):
            raise DataError(f"element {i} (from 0) is a JSON {type(record).__name__}, not an "
                            f"object", file=str(path), row=i)
        where = Where(path, i, note.format(i=i, key=key))
        yield where, (record if key is None else {KEY: key, **record})


def _table(path: Path, delimiter: str, header: bool, quoting: bool,
           required: Sequence[str]) -> Iterator[tuple[Where, dict]]:
    reader = csv.reader(_lines(path), delimiter=delimiter, strict=True,
                        quoting=csv.QUOTE_MINIMAL if quoting else csv.QUOTE_NONE)
    names: list[str] | None = None
    row = 0
    try:
        for cells in reader:
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue
            if names is None:
                names = [c.strip() for c in cells] if header else \
                    [str(i) for i in range(len(cells))]
                if header:
                    _check_header(names, required, path, delimiter, delimiter.join(cells))
                    continue
            row += 1
            where = Where(path, row, f"data row {row} from 1"
                          f"{', header excluded' if header else ''}; file line "
                          f"{reader.line_num}")
            if len(cells) != len(names):
                raise where.error(f"expected {len(names)} cells like the "
                                  f"{'header' if header else 'first row'}, found "
                                  f"{len(cells)}")
            yield where, dict(zip(names, cells))
        if names is not None and header and row == 0:
            raise DataError("file has a header but no data rows", file=str(path))
    except csv.Error as e:
        raise DataError(f"malformed table on file line {reader.line_num}: {e}; cells that "
                        f"begin with an unescaped '\"' need quoting off (--no-quoting)",
                        file=str(path), row=reader.line_num) from None


def _check_header(names: list[str], required: Sequence[str], path: Path, delimiter: str,
                  first_line: str) -> None:
    """check_header, naming --no-header when not one required column is in the first row (a
    table without a header row reads its first data row as one)."""
    if required and not any(c in names for c in required) and len(names) > 1:
        kind = "tab" if delimiter == "\t" else "comma"
        raise DataError(f"expected {kind}-separated columns {', '.join(required)} in the header "
                        f"row, found {first_line[:80]!r}: if the file has no header row, read it "
                        f"with --no-header (option header: false) and name the columns by "
                        f"position: --column question=0 --column label=1 …", file=str(path),
                        row=0, field=required[0])
    check_header(names, required, path, delimiter, first_line)


_STEP = re.compile(r"([^.\[\]]+)((?:\[\d*\])*)")


def is_path(spec: str) -> bool:
    return "." in spec or "[" in spec


def pick(record: Any, spec: str) -> Any:
    """The value at `spec` in `record`: a plain key, or a path like `a.b`, `a[0]`, `a[].text`
    (`[]` maps the rest of the path over a list). MISSING if any step is absent."""
    if isinstance(record, dict) and spec in record:
        return record[spec]
    if not is_path(spec):
        return MISSING
    return _walk(record, spec.split("."))


def _walk(value: Any, steps: list[str]) -> Any:
    if not steps:
        return value
    match = _STEP.fullmatch(steps[0])
    if match is None or not isinstance(value, dict) or match.group(1) not in value:
        return MISSING
    value = value[match.group(1)]
    indexes = re.findall(r"\[(\d*)\]", match.group(2))
    for n, index in enumerate(indexes):
        if not isinstance(value, list):
            return MISSING
        if index == "":
            rest_index = "".join(f"[{i}]" for i in indexes[n + 1:])
            if rest_index:
                items = [_walk({"_": v}, [f"_{rest_index}"] + steps[1:]) for v in value]
            else:
                items = [_walk(v, steps[1:]) for v in value]
            return MISSING if any(v is MISSING for v in items) else items
        if int(index) >= len(value):
            return MISSING
        value = value[int(index)]
    return _walk(value, steps[1:])
