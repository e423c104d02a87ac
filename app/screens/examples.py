"""Examples: the test examples of finished runs, filtered (disagreements between two runs, wrong in
every run, teacher right or wrong, a search); one example in full with the teacher's rationale, each
run's prediction side by side, and the rationale as each run's condition trains on it."""

import streamlit as st

from app import examples_view

st.title("Examples")
runs = examples_view.pick_runs()
data = examples_view.test_data(runs)
if not runs or data is None:
    st.stop()
runs = data["runs"]

chosen = examples_view.filters(runs)
ordered, predictions, kept = examples_view.matching(data, runs, chosen)
examples_view.overview(kept, len(ordered), predictions, runs)
if not kept:
    st.stop()

st.subheader("One example")
position = {ex["id"]: i for i, ex in enumerate(ordered)}
by_id = {ex["id"]: ex for ex in kept}
picked = st.selectbox("Example", list(by_id), format_func=lambda i: f"{i}: {by_id[i]['question'][:90]}",
                      key="example_pick")
examples_view.example_detail(by_id[picked], position[picked], runs, predictions)
