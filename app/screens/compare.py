"""Compare: accuracy per arm (an arm is a config without its seed, labelled by what differs; by
dataset and student when several), under a chosen scoring mode (arms evaluated by generation keep
their generated accuracy), with its interval over seeds and one dot per seed (a cross and a ⚠ for a
run that answers a constant label); the numbers as a table and CSV; every arm against a reference
arm, the training procedures first (seeds as the unit, Holm-corrected), then the test set; the
experiment's report as a zip; the training curves (label loss and validation accuracy per arm, mean
over seeds with a band, against steps, epochs or training tokens); two arms side by side with the
seed budget, then item by item. Runs whose data overlaps (test in train) or whose rationales leak the
answer are warned of above the bars."""

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

st.subheader("Against a reference arm")
reference = compare_view.verdicts(rows, arms, scoring)
compare_view.report_download(rows, reference, scoring)

st.subheader("Training curves")
compare_view.curves(rows)

st.subheader("Two arms, item by item")
compare_view.paired(arms, scoring)
