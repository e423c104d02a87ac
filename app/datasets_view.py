"""The Datasets page's sections: the datasets with their provenance, and a browser of examples.
The rationale sets' sections (provenance, examples, comparison) are in app/rationale_sets_view.py.
"""

from __future__ import annotations

import os

import streamlit as st

from app import import_view, queries, tables
from app.components import empty_state, text_block
from app.safe import code, md

BROWSE_LIMIT = 200


def overview(infos: list[dict]) -> None:
    if not infos:
        empty_state("No datasets are registered. Put the study's releases under $COTDISTILL_DATA_DIR "
                    f"(now {os.environ.get('COTDISTILL_DATA_DIR') or 'unset'}) and reload.")
        return
    tables.show(tables.datasets_frame(infos), key="datasets_table")
    broken = [i for i in infos if i["error"]]
    if broken:
        st.warning(f"{len(broken)} dataset(s) cannot be read: see the `problem` column. Local releases are "  # text: env
                   f"looked for under $COTDISTILL_DATA_DIR "
                   f"({os.environ.get('COTDISTILL_DATA_DIR') or 'unset'}).")
    if not any(i["counts"] for i in infos):
        empty_state("No dataset has examples here yet: the built-in `synthetic` tasks always do, once the "
                    "package is installed; local releases need $COTDISTILL_DATA_DIR.")


def browse(infos: list[dict]) -> None:
    """Pick a dataset and a split, search, and read examples in full."""
    readable = [i for i in infos if i["counts"] and not i["error"]]
    if not readable:
        empty_state("No readable dataset to browse.")
        return
    names = [i["name"] for i in readable]
    cols = st.columns([2, 1, 2])
    name = cols[0].selectbox("Dataset", names, key="browse_dataset")
    split = cols[1].selectbox("Split", list(next(i for i in readable if i["name"] == name)["counts"]),
                              key="browse_split")
    search = cols[2].text_input("Search question and rationale", key="browse_search")
    info = next(i for i in readable if i["name"] == name)
    if st.toggle("Data report of every split (labels, rationale lengths, answer leaks, placeholders, "
                 "train/test overlap)", key="browse_report"):
        try:
            import_view.show_report(queries.dataset_report(name, tuple(info["counts"])))
        except Exception as e:              # a dataset that cannot be read: say why
            st.error(f"Could not read {md(name)}: {md(e)}")
    try:
        examples = queries.dataset_examples(name, split, None, search, limit=BROWSE_LIMIT)
    except Exception as e:                  # a dataset that cannot be read: say why
        st.error(f"Could not read {md(name)} ({md(split)}): {md(e)}")
        return
    if not examples:
        st.info("No example matches." if search else "This split is empty.")
        return
    st.caption(f"{len(examples)} example(s)" + (f" (the first {BROWSE_LIMIT})" if len(examples) == BROWSE_LIMIT else ""))  # text: counts
    tables.show([{"id": e["id"], "question": e["question"], "label": e["label"],
                  "teacher": {True: "✓", False: "✗"}.get(e["teacher_correct"], ""),
                  "rationale": e["rationale"] or ""} for e in examples], key="browse_table")
    by_id = {e["id"]: e for e in examples}
    picked = st.selectbox("Read one", list(by_id), key="browse_pick")
    example(by_id[picked])


def example(ex: dict) -> None:
    text_block(ex["question"])
    if ex.get("choices"):
        st.markdown("**Choices:** " + " · ".join(code(c) for c in ex["choices"]))
    st.markdown(f"**Gold label:** {code(ex['label'])} · **teacher:** {code(ex.get('teacher_label') or '—')}")
    st.markdown("**Rationale**")
    text_block(ex.get("rationale"), muted=True)
