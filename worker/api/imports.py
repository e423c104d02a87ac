"""Importing your own rationales from the browser: the same reader and checks as `cotdistill data
import` (cotdistill.data.store.read_import / import_file), confined to the allowed roots.

    path = save_upload("cqa_train.jsonl", data)                 # under $COTDISTILL_HOME/uploads/
    preview = preview_import({"train": path}, {"columns": {"label": "answerKey"}})
    preview["rows"], preview["report"], preview["error"]        # error: None or {message, field, …}
    result = import_rationale_set({"train": path}, options, "cqa-mine")   # {set_id, path, error}

`options` are the importer's options as plain data (see IMPORT_OPTIONS). Every path is confined
(worker.guard.confine) before any byte of it is read. A bad file or option comes back as
`error`: one sentence naming the file, row and field (`field` is the importer's: an option name
such as 'format' or 'holdout', or the file's column), never as an exception, so the page can show
it under the widget it belongs to. Nothing is written unless every row reads.

    rationale_set_report(3); dataset_report("commonsenseqa-dsbs", ["train", "test"])   # the data report
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path
from typing import Any, Mapping

IMPORT_OPTIONS = ("columns", "kind", "format", "header", "quoting", "unescape", "choices_sep",
                  "embedded_choices", "label_format", "rationale_cut", "holdout", "seed",
                  "strip_leaks", "placeholders", "keep_duplicate_test_rows")
"""The options the browser may set; the CLI's `--mapping` keys less per-split overrides."""
PREVIEW_ROWS = 5
UPLOADS = "uploads"


def import_choices() -> dict:
    """What the import form offers: fields, kinds, formats, label formats and placeholder modes
    (with what each means), and the data folder a server path may name."""
    from cotdistill.data import data_dir
    from cotdistill.data.importer import FIELDS
    from cotdistill.data.labels import LABEL_FORMATS
    from cotdistill.data.layouts import LAYOUT_FORMATS
    from cotdistill.data.placeholders import PLACEHOLDER_MODES
    from cotdistill.examples import KINDS
    return {"fields": list(FIELDS), "kinds": list(KINDS), "formats": list(LAYOUT_FORMATS),
            "label_formats": dict(LABEL_FORMATS), "placeholders": dict(PLACEHOLDER_MODES),
            "data_dir": str(data_dir())}


def save_upload(filename: str, data: bytes) -> str:
    """Store an uploaded file under $COTDISTILL_HOME/uploads/<content hash>/<name> (the same
    bytes land in the same place, so a page rerun writes nothing new); returns its path."""
    from cotdistill.paths import home
    name = re.sub(r"[^\w.-]", "_", Path(filename).name).lstrip(".") or "upload"
    folder = home() / UPLOADS / hashlib.sha256(data).hexdigest()[:16]
    path = folder / name
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(path)
    return str(path)


def preview_import(files: Mapping[str, str], options: Mapping[str, Any], *,
                   rationales: Mapping[str, list[str]] | None = None, n: int = PREVIEW_ROWS) -> dict:
    """The first `n` parsed rows of each split, the counts and the data report of what an import
    with these options would write; or `error`. `rationales`: {split: files} holding that split's
    rationales apart from its questions (numbered files in order). Writes nothing."""
    from cotdistill.data.report import data_report, format_report
    from cotdistill.data.store import read_import
    from cotdistill.errors import DataError
    from worker.guard import Refused
    try:
        examples = read_import(_confined(files), split_options=_apart(rationales),
                               **_options(options))
    except (DataError, Refused) as e:
        return {"error": _error(e), "rows": {}, "counts": {}, "report": None, "report_text": ""}
    report = data_report(examples)
    return {"error": None, "counts": {part: len(exs) for part, exs in examples.items()},
            "rows": {part: [_row(e) for e in exs[:n]] for part, exs in examples.items()},
            "report": report, "report_text": format_report(report)}


def import_rationale_set(files: Mapping[str, str], options: Mapping[str, Any], name: str, *,
                         teacher: str | None = None,
                         rationales: Mapping[str, list[str]] | None = None) -> dict:
    """Import as a new, immutable set named `name` under $COTDISTILL_HOME/rationale_sets and
    register it: {set_id, path, error}. Nothing is written when `error` is set."""
    from cotdistill.data.rationale_set import sets_root
    from cotdistill.errors import DataError
    from cotdistill.data.store import import_file
    from worker.api.core import sessions
    from worker.guard import Refused
    from worker.rationale_sets import register
    from cotdistill.names import name_problem
    if problem := name_problem(name, "the set name"):
        return {"set_id": None, "path": None, "error": {
            "message": problem, "field": "name", "file": None, "row": None}}
    try:
        path = import_file(_confined(files), sets_root() / name, name=name, teacher=teacher or None,
                           split_options=_apart(rationales), **_options(options))
    except (DataError, Refused) as e:
        error = _error(e)
        if isinstance(e, DataError) and (sets_root() / name).exists():
            error = {**error, "field": "name", "message": f"a rationale set named {name!r} "
                     f"already exists and sets are immutable: choose another name"}
        return {"set_id": None, "path": None, "error": error}
    try:
        set_id = register(sessions(), path)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)    # a set on disk the database does not list is
        raise                                      # an orphan whose name is taken: none is left
    return {"set_id": set_id, "path": str(path), "error": None}


def _confined(files: Mapping[str, str]) -> dict[str, Path]:
    from cotdistill.errors import DataError
    from worker.guard import confine
    if not files:
        raise DataError("no file given: upload one or give a path inside the data folder",
                        field="path")
    out = {}
    for split, path in files.items():
        if not str(path).strip():
            raise DataError(f"no file given for split {split!r}", field="path")
        out[split] = confine(str(path).strip(), "path")
    return out


def _apart(rationales: Mapping[str, list[str]] | None) -> dict[str, dict] | None:
    """Per-split importer options {split: {rationales: [confined files]}}, or None."""
    from worker.guard import confine
    if not rationales:
        return None
    return {split: {"rationales": [str(confine(str(p).strip(), "rationales")) for p in paths]}
            for split, paths in rationales.items() if paths}


def _options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The importer's options without empty values; DataError naming an unknown one."""
    from cotdistill.errors import DataError
    unknown = sorted(set(options) - set(IMPORT_OPTIONS))
    if unknown:
        raise DataError(f"unknown import option {unknown[0]!r}; options: "
                        f"{', '.join(IMPORT_OPTIONS)}", field=unknown[0])
    return {k: v for k, v in options.items() if v is not None and v != "" and v != [] and v != {}}


def _error(e: Exception) -> dict:
    """A refusal as plain data for the page: the sentence, and where it belongs."""
    from worker.guard import Refused
    field = str(e).split(":", 1)[0] if isinstance(e, Refused) else getattr(e, "field", None)
    return {"message": str(e), "field": field or "path",
            "file": getattr(e, "file", None), "row": getattr(e, "row", None)}


def _row(e) -> dict:
    return {"id": e.id, "question": e.question, "choices": list(e.choices) if e.choices else None,
            "label": e.label, "rationale": e.rationale, "teacher_label": e.teacher_label,
            "teacher_correct": e.teacher_correct}


# ------------------------------------------------------------------------------------------ data reports

def rationale_set_report(set_id: int) -> dict:
    """The data report of a registered set (its splits as written): {report, report_text}."""
    from cotdistill.data.report import data_report, format_report
    from cotdistill.data.store import open_rationale_set
    from worker.api.core import NotFound
    from worker.api.sets import list_rationale_sets
    paths = {r["id"]: r["path"] for r in list_rationale_sets()}
    if set_id not in paths:
        raise NotFound(f"no rationale set {set_id}")
    rs = open_rationale_set(paths[set_id])
    report = data_report({split: rs.examples(split) for split in rs.splits},
                         notes=(rs.provenance.get("extra") or {}).get("import") or {})
    return {"report": report, "report_text": format_report(report)}


def dataset_report(name: str, splits: list[str], *, options: dict | None = None) -> dict:
    """The data report of a registered dataset's `splits` (its own files' paths confined first)."""
    from cotdistill import data
    from cotdistill.data.report import data_report, format_report
    from worker.guard import check_paths, dataset_paths
    check_paths(dataset_paths(name, options))
    report = data_report({split: data.load_examples(name, split, **(options or {})) for split in splits})
    return {"report": report, "report_text": format_report(report)}
