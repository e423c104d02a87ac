"""The Datasets screen's import section: your own rationale file, uploaded or named by its path in
the data folder, read with a layout and a column mapping, previewed live (the first parsed rows and
the data report), then imported as a named, immutable rationale set.

The file is read by the jobs API with the CLI's own reader and checks (worker/api/imports.py), so
the browser and `cotdistill data import` accept and refuse the same files. A refusal is shown under
the widget it belongs to (the file, an option, or the column the file's row fails on); nothing is
written until the preview reads cleanly and Import is pressed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import streamlit as st

from app import queries, tables
from app.safe import code, md
from worker import api

SOURCES = ("upload a file", "a path in the data folder")
AUTO_FORMAT = "(from the extension)"
CHOICES = {"a column holding a list": None, "a column split at a separator": "sep",
           "inside the question text": "embedded"}
FIELD_HELP = {"id": "default: the row number (or the key of a keyed JSON object)",
              "choices": "a JSON list, or a path like question.choices[].text",
              "rationale": "leave as is if the file has none",
              "teacher_label": "the teacher's answer, if the file has one",
              "teacher_correct": "a true/false 'was the teacher right' column, if any"}
TABLE_EXTENSIONS = (".csv", ".tsv", ".tab")


def import_section() -> None:
    """The whole section: source, layout, mapping, live preview, name and Import."""
    flash = st.session_state.pop("import_done", None)
    if flash:
        st.success(flash)                                   # text: set below, from an id and a checked name
    choices = api.import_choices()
    slots: dict[str, st.delta_generator.DeltaGenerator] = {}
    files = {"train": _source("train", "File", slots, choices["data_dir"])}
    with st.expander("A separate test file (optional; or hold out a test split below)"):
        test = _source("test", "Test file", slots, choices["data_dir"])
    if test:
        files["test"] = test
    with st.expander("The training file's rationales are kept in another file (optional)"):
        apart = _rationale_sources(slots, choices["data_dir"])
    rationales = {"train": apart} if apart else None
    options = _layout(files, choices, slots) | _mapping(choices, slots)
    if not files["train"]:
        st.caption("Upload a file or give its path to see how it reads.")
        return
    preview = queries.import_preview(files, options, rationales)
    error = preview["error"]
    if error:
        _slot_for(error, files, options, slots, apart).error(error["message"], icon=":material/error:")
    else:
        _show_preview(preview)
    name, teacher = _naming(files, slots)
    if st.button("Import as a rationale set", key="imp_go", type="primary", disabled=bool(error)):
        _do_import(files, options, rationales, name, teacher, slots)


def _source(split: str, label: str, slots: dict, data_dir: str) -> str | None:
    """A path on the server for `split`: an uploaded file stored under the state folder, or a path
    typed in (relative to the data folder)."""
    how = st.radio(f"{label}: where from", SOURCES, horizontal=True, key=f"imp_how_{split}")
    if how == SOURCES[0]:
        uploaded = st.file_uploader(label, key=f"imp_upload_{split}",
                                    help="JSON Lines, JSON (an array, or an object keyed by row), CSV or TSV")
        path = api.save_upload(uploaded.name, uploaded.getvalue()) if uploaded is not None else None
    else:
        typed = st.text_input(f"{label}: path", key=f"imp_path_{split}",
                              help=f"A file inside the data folder ({data_dir}) or another folder the "
                                   f"operator allows; a relative path is taken inside the data folder.")
        path = str(Path(data_dir) / typed.strip()) if typed.strip() else None
    slots[f"path:{split}"] = st.empty()
    return path


def _rationale_sources(slots: dict, data_dir: str) -> list[str]:
    """Files holding the rationales (a JSON array of strings, lines of text, or JSON Lines objects
    {id, rationale}), aligned by position or by id; several numbered files are read in number order."""
    how = st.radio("Rationale files: where from", SOURCES, horizontal=True, key="imp_how_rationales")
    if how == SOURCES[0]:
        uploaded = st.file_uploader("Rationale files", key="imp_upload_rationales", accept_multiple_files=True,
                                    help="Numbered files (cot_0.json, cot_1.json, …) are read in number order.")
        paths = [api.save_upload(u.name, u.getvalue()) for u in sorted(uploaded or [], key=lambda u: _natural(u.name))]
    else:
        typed = st.text_area("Rationale files: paths, one a line", key="imp_path_rationales", height=80)
        paths = [str(Path(data_dir) / line.strip()) for line in typed.split("\n") if line.strip()]
    slots["rationales"] = st.empty()
    return paths


def _natural(name: str) -> list:
    """Sort key reading the digits of a name as a number: cot_2 before cot_10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _layout(files: dict, choices: dict, slots: dict) -> dict:
    """Format and table options, kind, label format and how the choices are written."""
    cols = st.columns(3)
    fmt = cols[0].selectbox("Format", [AUTO_FORMAT] + choices["formats"], key="imp_format")
    with cols[0]:
        slots["format"] = st.empty()
    kind = cols[1].selectbox("Kind", choices["kinds"], key="imp_kind")
    with cols[1]:
        slots["kind"] = st.empty()
    options: dict = {"format": None if fmt == AUTO_FORMAT else fmt, "kind": kind}
    if kind == "multiple_choice":
        formats = list(choices["label_formats"])
        options["label_format"] = cols[2].selectbox(
            "Label format", formats, key="imp_label_format",
            help="\n\n".join(f"**{k}**: {v}" for k, v in choices["label_formats"].items()))
        with cols[2]:
            slots["label_format"] = st.empty()
        options |= _choices_mode(slots)
    if fmt in ("csv", "tsv") or (fmt == AUTO_FORMAT and any(
            Path(p).suffix.lower() in TABLE_EXTENSIONS for p in files.values() if p)):
        options |= _table_options()
    return options


def _choices_mode(slots: dict) -> dict:
    cols = st.columns([2, 1])
    mode = CHOICES[cols[0].radio("Choices are written", list(CHOICES), horizontal=True, key="imp_choices")]
    options: dict = {"embedded_choices": mode == "embedded"}
    if mode == "sep":
        options["choices_sep"] = cols[1].text_input("Separator", value="|", key="imp_choices_sep")
    with cols[0]:
        slots["choices_sep"] = slots["embedded_choices"] = st.empty()
    return options


def _table_options() -> dict:
    cols = st.columns(3)
    return {"header": cols[0].checkbox("First row names the columns", value=True, key="imp_header",
                                       help="Off: columns are positions 0, 1, … (e.g. question = 0)"),
            "quoting": not cols[1].checkbox("Cells begin with a literal \"", key="imp_no_quoting"),
            "unescape": cols[2].checkbox("Turn literal \\n into line breaks", key="imp_unescape")}


def _mapping(choices: dict, slots: dict) -> dict:
    """Which of the file's columns hold each field, the rationale cut, leaks and the holdout."""
    st.markdown("**Columns** (the file's column name, a position, or a path like `question.stem`; "
                "empty: the field's own name)")
    columns = {}
    cols = st.columns(4)
    for i, field in enumerate(choices["fields"]):
        with cols[i % 4]:
            value = st.text_input(field, key=f"imp_col_{field}", placeholder=field, help=FIELD_HELP.get(field))
            slots[f"column:{field}"] = st.empty()
        if value.strip():
            columns[field] = value.strip()
    cols = st.columns([2, 1, 1])
    cuts = cols[0].text_area("Cut each rationale at (one marker a line)", key="imp_cut", height=80,
                             help="For raw teacher completions: the rationale keeps what comes before the "
                                  "first marker, e.g. 'Thus, the answer is'.")
    with cols[0]:
        slots["rationale_cut"] = st.empty()
    strip = cols[0].checkbox("Drop rationale sentences that state the gold answer", key="imp_strip")
    holdout = cols[1].number_input("Hold out as test (share)", 0.0, 0.9, 0.0, 0.05, key="imp_holdout",
                                   help="0: none. A seeded share of a train-only file's questions becomes "
                                        "the test split (the rows of one question stay together).")
    with cols[1]:
        slots["holdout"] = st.empty()
    seed = cols[2].number_input("Holdout seed", 0, 2**31 - 1, 0, key="imp_seed")
    modes = choices["placeholders"]
    placeholders = cols[2].selectbox(
        "Placeholder rationales", list(modes), key="imp_placeholders",
        format_func=lambda m: f"{m}: {modes[m]}",
        help="A rationale that is empty, nan, none, null, n/a, dummy, - or one word.")
    with cols[2]:
        slots["placeholders"] = st.empty()
    duplicates = cols[1].checkbox("Keep every row of a test question", key="imp_keep_duplicates",
                                  help="Off: the test split keeps one row per question (the others are "
                                       "dropped and counted). On: a run's interval resamples questions.")
    return {"columns": columns or None, "strip_leaks": strip,
            "rationale_cut": [c for c in cuts.split("\n") if c.strip()] or None,
            "holdout": holdout or None, "seed": int(seed) if holdout else None,
            "placeholders": None if placeholders == "drop" else placeholders,
            "keep_duplicate_test_rows": duplicates or None}


def _slot_for(error: dict, files: dict, options: dict, slots: dict, apart: list[str] | None = None):
    """The placeholder under the widget an error belongs to: an option, a column, else the file."""
    field = error.get("field")
    if field in slots:
        return slots[field]
    if error.get("file") and any(_same(p, error["file"]) for p in apart or ()):
        return slots["rationales"]
    if field == "columns":
        return slots["column:id"]
    mapped = {**{f: f for f in api.import_choices()["fields"]}, **(options.get("columns") or {})}
    for ours, theirs in mapped.items():
        if field == theirs and f"column:{ours}" in slots and error.get("row") is not None:
            return slots[f"column:{ours}"]
    split = next((s for s, p in files.items() if p and error.get("file") and _same(p, error["file"])), "train")
    return slots[f"path:{split}"]


def _same(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def _show_preview(preview: dict) -> None:
    counts = ", ".join(f"{md(split)}: {int(n)} rows" for split, n in preview["counts"].items())
    st.markdown(f"**Preview** ({counts}): the first rows as they will be imported")  # text: escaped above
    for split, rows in preview["rows"].items():
        st.caption(md(split))
        tables.show(pd.DataFrame([{
            "id": r["id"], "question": r["question"], "choices": " | ".join(r["choices"] or []),
            "label": r["label"], "rationale": r["rationale"] or "", "teacher": r["teacher_label"] or "",
            "right": {True: "✓", False: "✗"}.get(r["teacher_correct"], "")} for r in rows]),
            key=f"imp_rows_{split}")
    show_report(preview)


def show_report(result: dict) -> None:
    """A data report ({report, report_text} from the jobs API): its lines, then each warning."""
    st.markdown("**Data report**")
    st.code(result["report_text"], language=None)
    for warning in result["report"]["warnings"]:
        st.warning(md(warning), icon=":material/warning:")


def _naming(files: dict, slots: dict) -> tuple[str, str]:
    cols = st.columns(2)
    default = Path(files["train"]).stem
    name = cols[0].text_input("Set name", value=default, key="imp_name")
    with cols[0]:
        slots["name"] = st.empty()
    teacher = cols[1].text_input("Who wrote the rationales (optional)", key="imp_teacher")
    return name.strip(), teacher.strip()


def _do_import(files: dict, options: dict, rationales: dict | None, name: str, teacher: str,
               slots: dict) -> None:
    result = api.import_rationale_set(files, options, name, teacher=teacher or None, rationales=rationales)
    if result["error"]:
        error = result["error"]
        _slot_for(error, files, options, slots, (rationales or {}).get("train")).error(
            error["message"], icon=":material/error:")
        return
    queries.forget_jobs()
    st.session_state["import_done"] = (f"Imported rationale set #{int(result['set_id'])} {md(repr(name))} "
                                       f"({result['path']}).")   # the state folder / a checked name
    st.rerun()
