"""Runs: every run of an experiment (or every run) with its status, progress, phase, ETA (evaluation
included) and accuracy first, then loss curve, throughput, why it waits, how long it queued and ran,
worker and attempt, and the experiment's expected duration behind the whole queue, updated live; cancel, retry and re-queue; a failed run's error in place; and
one finished run's answers label by label."""

import streamlit as st

from app import queries, runs_view
from app.components import experiment_picker

st.title("Runs")
experiment = experiment_picker(allow_all=True, key="runs_experiment")


@st.fragment(run_every=runs_view.REFRESH_S)
def live_runs() -> None:
    rows = queries.runs(experiment["id"] if experiment else None)
    if not rows:
        runs_view.no_runs(experiment)
        return
    runs_view.status_line(rows)
    est = runs_view.expected_duration(experiment)
    runs_view.table(rows, est)
    runs_view.failed_errors(rows)
    runs_view.actions(rows, experiment)


live_runs()
if experiment:
    st.page_link("screens/compare.py", label="Compare this experiment's arms", icon=":material/bar_chart:",
                 query_params={"experiment": experiment["name"]})

st.subheader("One run's answers")
runs_view.answers(experiment)
