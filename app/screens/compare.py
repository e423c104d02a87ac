"""Compare: accuracy by placement × perturbation (by dataset and student when several) with its
interval over seeds and one dot per seed; the numbers as a table and CSV; the training curves; and
two arms side by side, item by item."""

import streamlit as st

from app import compare_view, queries, tables

st.title("Compare")
rows, name = compare_view.pick_runs()
arms = queries.compare(tuple(r["id"] for r in rows)) if rows else []
if not arms:
    compare_view.no_results(rows)
    st.stop()
notes = tables.collapse_notes(rows)

st.subheader("Accuracy")
compare_view.accuracy_bars(arms, notes)
compare_view.numbers(arms, notes, name)

st.subheader("Training curves")
compare_view.curves(rows)

st.subheader("Two arms, item by item")
compare_view.paired(arms)
