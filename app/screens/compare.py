"""Compare: accuracy by placement × perturbation (by dataset and student when several), under a
chosen scoring mode, with its interval over seeds and one dot per seed (a cross and a ⚠ for a run
that answers a constant label); the numbers as a table and CSV; the training curves (label loss and
validation accuracy per arm, mean over seeds with a band, against steps, epochs or training tokens);
two arms side by side, item by item; and the experiment's report as a zip. Runs whose data overlaps
(test in train) or whose rationales leak the answer are warned of above the bars."""

import streamlit as st

from app import compare_view, data_warnings_view, queries

st.title("Compare")
rows, name = compare_view.pick_runs()
scoring = compare_view.scoring_picker(rows)
arms = queries.compare(tuple(r["id"] for r in rows), scoring) if rows else []
if not arms:
    compare_view.no_results(rows, name)
    st.stop()
notes = compare_view.collapse_notes(rows, scoring)
arms = compare_view.mark_collapsed(arms, notes)

st.subheader("Accuracy")
data_warnings_view.runs_warning(rows)
compare_view.accuracy_bars(arms, notes)
compare_view.numbers(arms, notes, name + (f"-{scoring}" if scoring else ""))
compare_view.report_download(rows, arms, scoring)

st.subheader("Training curves")
compare_view.curves(rows)

st.subheader("Two arms, item by item")
compare_view.paired(arms, scoring)
