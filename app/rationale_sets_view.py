"""The Datasets screen's rationale-set sections: the registered sets with their provenance, a
searchable view of one set's examples with how to train on it, and two sets of one dataset compared.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st
import yaml

from app import import_view, queries, tables
from app.components import empty_state, text_block
from app.safe import code

BROWSE_LIMIT = 200
TEACHER_FILTER = {"any": None, "teacher correct": True, "teacher incorrect": False}


def overview(sets: list[dict]) -> None:
    if not sets:
        empty_state("No rationale set yet. Generate one with a teacher model on the Teacher screen (a sample of "
                    "a dataset first), or register a set folder with `cotdistill` (import a file or a published "
                    "release).", page="screens/teacher.py", label="Generate rationales")
        return
    tables.show(tables.rationale_sets_frame(sets), key="sets_table",
                column_config={"teacher accuracy": st.column_config.NumberColumn(format="%.3f")})
    st.caption("A set is immutable: its content hash covers every example, and the provenance says where its "
               "rationales come from (teacher, prompt, decoding, whether the teacher was told the answer).")


def pick_set(sets: list[dict], *, key: str, label: str = "Rationale set", among: list[dict] | None = None) -> dict:
    """A select box of sets, preselected from `?set=ID`."""
    among = among if among is not None else sets
    by_id = {s["id"]: s for s in among}
    wanted = st.query_params.get("set")
    ids = list(by_id)
    index = ids.index(int(wanted)) if wanted and wanted.isdigit() and int(wanted) in by_id else 0
    return by_id[st.selectbox(label, ids, index=index, format_func=lambda i: set_label(by_id[i]), key=key)]


def set_label(s: dict) -> str:
    return f"#{s['id']} {s['name']} ({s['dataset']}, {s['n_examples']} examples)"


def browse(sets: list[dict]) -> None:
    """One set's examples: split, search, teacher right or wrong; one example in full."""
    if not sets:
        return
    chosen = pick_set(sets, key="set_pick")
    with st.expander("Its provenance in full (provenance.json: the prompt template, decoding, teacher, counts)"):
        st.json(chosen["provenance"] or {}, expanded=True)
    if st.toggle("Data report (labels, rationale lengths, answer leaks, placeholders, train/test overlap)",
                 key="set_report"):
        import_view.show_report(queries.rationale_set_report(chosen["id"]))
    splits = list((chosen["provenance"].get("splits") or {}))
    cols = st.columns([1, 2, 1])
    split = cols[0].selectbox("Split", ["(all)"] + splits, key="set_split")
    search = cols[1].text_input("Search question and rationale", key="set_search")
    teacher = cols[2].selectbox("Teacher", list(TEACHER_FILTER), key="set_teacher")
    rows = queries.rationale_set_examples(chosen["id"], None if split == "(all)" else split, search or None,
                                          TEACHER_FILTER[teacher], BROWSE_LIMIT)
    if not rows:
        st.info("No example matches." if search or TEACHER_FILTER[teacher] is not None else "This set is empty.")
    else:
        st.caption(f"{len(rows)} example(s)" + (f" (the first {BROWSE_LIMIT})" if len(rows) == BROWSE_LIMIT else ""))  # text: counts
        tables.show(pd.DataFrame([{
            "example": r["example_id"], "split": r["split"], "question": r["question"][:120], "gold": r["label"],
            "teacher": r["teacher_label"] or "", "right": {True: "✓", False: "✗"}.get(r["teacher_correct"], ""),
            "rationale": r["rationale"] or ""} for r in rows]), key="set_examples")
        by_key = {f"{r['split']}/{r['example_id']}": r for r in rows}
        _example(by_key[st.selectbox("Read one", list(by_key), key="set_example_pick")])
    use(chosen)


def _example(row: dict) -> None:
    text_block(row["question"])
    if row.get("choices"):
        st.markdown("**Choices:** " + " · ".join(code(c) for c in row["choices"]))
    verdict = {True: "right", False: "wrong"}.get(row["teacher_correct"], "unknown")
    st.markdown(f"**Gold label:** {code(row['label'])} · **teacher:** {code(row['teacher_label'] or '—')} ({verdict})")  # text: verdict
    text_block(row["rationale"], muted=True)


def use(chosen: dict) -> None:
    """How to train on the set: its data section, and Launch with the set preselected."""
    st.markdown("**Train on this set**: in a run config, or on Launch (choose *a rationale set* as the data).")
    data = {"data": {"name": "rationale-set", "options": {"path": chosen["path"]},
                     "rationale_filter": "all"}}
    st.code(yaml.safe_dump(data, sort_keys=False).rstrip() +
            "   # or teacher_correct: only the examples the teacher answered right", language="yaml")
    st.page_link("screens/launch.py", label=f"Launch an experiment on set #{chosen['id']}",
                 icon=":material/rocket_launch:", query_params={"rationale_set": str(chosen["id"])})


def compare(sets: list[dict]) -> None:
    """Two sets of the same dataset: sizes, rationale lengths, accuracy against gold, overlap, agreement."""
    datasets = {s["dataset"] for s in sets}
    pairs = [d for d in sorted(datasets) if sum(s["dataset"] == d for s in sets) > 1]
    if not pairs:
        empty_state("Comparing needs two sets of the same dataset: generate another one (another teacher, "
                    "prompt or decoding) on the Teacher screen.", page="screens/teacher.py",
                    label="Generate rationales")
        return
    left, right = st.columns(2)
    with left:
        a = pick_set(sets, key="compare_set_a", label="Set A", among=[s for s in sets if s["dataset"] in pairs])
    with right:
        b = pick_set(sets, key="compare_set_b", label="Set B",
                     among=[s for s in sets if s["dataset"] == a["dataset"] and s["id"] != a["id"]])
    result = queries.compare_rationale_sets(a["id"], b["id"])
    cols = st.columns(4)
    cols[0].metric("Shared examples", result["shared"], help=f"only in A: {result['only_a']}, only in B: {result['only_b']}")
    agreement = result["teacher_agreement"]
    cols[1].metric("Teachers agree", "—" if agreement is None else f"{agreement:.1%}",
                   help=f"same answer on {result['n_both_labelled']} shared examples both teachers answered")
    cols[2].metric("Both right", result["both_correct"])
    cols[3].metric("Only A right / only B right", f"{result['only_a_correct']} / {result['only_b_correct']}")
    left, right = st.columns(2)
    tables.show(tables.set_comparison_frame(result), key="sets_compared", where=left)
    tables.show(tables.set_overlap_frame(result), key="sets_overlap", where=right)
    if result["gold_mismatches"]:
        st.warning(f"{int(result['gold_mismatches'])} shared example(s) have different gold labels in the two sets: "
                   f"are they really the same dataset and options?")
