"""Datasets: every dataset the workbench can read, with its provenance (kind, description, examples
and rationales per split, or why it cannot be read), and a searchable view of its examples."""

import streamlit as st

from app import datasets_view, queries

st.title("Datasets")
infos = queries.datasets()

st.subheader("Available datasets")
datasets_view.overview(infos)

st.subheader("Examples")
datasets_view.browse(infos)
