"""Datasets: every dataset the workbench can read, with its provenance (kind, description, examples
and rationales per split, or why it cannot be read), a searchable view of its examples and its data
report (labels, rationale lengths, answer leaks, placeholders, train/test overlap); then the
registered rationale sets with theirs (teacher, prompt, decoding, gold-conditioned, date, content hash,
counts, teacher accuracy); importing your own rationale file (uploaded, or a path in the data folder)
as a new set, with a live preview of the parsed rows and the data report; one set's examples and how
to train on it, and two sets compared."""

import streamlit as st

from app import datasets_view, import_view, queries, rationale_sets_view, selftest_view

st.title("Datasets")
infos = queries.datasets()

st.subheader("Available datasets")
datasets_view.overview(infos)

st.subheader("Examples")
datasets_view.browse(infos)

st.subheader("Rationale sets")
sets = queries.rationale_sets()
rationale_sets_view.overview(sets)

st.subheader("Import your own rationales")
import_view.import_section()

if sets:
    st.subheader("A rationale set's examples")
    rationale_sets_view.browse(sets)
    st.subheader("Two rationale sets compared")
    rationale_sets_view.compare(sets)

st.subheader("Self-test: does the pipeline detect what it should?")
selftest_view.panel()
