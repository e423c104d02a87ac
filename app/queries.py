"""Cached reads of the jobs API (worker/api.py), the app's only door to the system.

    rows = queries.runs(experiment_id)        # cached a second: a page refreshing every 2 s reads once
    queries.forget_runs()                     # after an action (launch, cancel, retry)

Live data (runs, progress, curves) is cached for about a second, finished results for a few seconds,
and slow, stable data (dataset listings, examples, previews) for minutes. Actions are never cached:
pages call `worker.api` directly for them, then forget the runs.
"""

from __future__ import annotations

import os

import streamlit as st

from worker import api

LIVE_S = 1
RESULTS_S = 5
SLOW_S = 600
PREVIEW_TIMEOUT_S = 60.0                    # $COTDISTILL_PREVIEW_TIMEOUT overrides it
NotFound = api.NotFound


@st.cache_data(ttl=SLOW_S, show_spinner="Reading the datasets…")
def datasets() -> list[dict]:
    return api.list_datasets()


@st.cache_data(ttl=SLOW_S, show_spinner=False)
def launch_options() -> dict:
    return api.launch_options()


@st.cache_data(ttl=SLOW_S, show_spinner="Reading examples…")
def dataset_examples(name: str, split: str, options: dict | None = None, search: str | None = None,
                     limit: int = 200) -> list[dict]:
    return api.dataset_examples(name, split, options=options, search=search or None, limit=limit)


@st.cache_data(ttl=LIVE_S, show_spinner=False)
def experiments() -> list[dict]:
    return api.list_experiments()


@st.cache_data(ttl=LIVE_S, show_spinner=False)
def runs(experiment: int | None = None) -> list[dict]:
    """The cells of one experiment (by id), or every run."""
    return api.list_runs(experiment=experiment)


@st.cache_data(ttl=LIVE_S, show_spinner=False)
def runs_by_id(run_ids: tuple[int, ...]) -> list[dict]:
    return api.list_runs(run_ids=list(run_ids))


@st.cache_data(ttl=LIVE_S, show_spinner=False)
def curves(run_ids: tuple[int, ...], name: str = "loss") -> list[dict]:
    return api.curves(list(run_ids), name)


@st.cache_data(ttl=LIVE_S, show_spinner=False)
def run_detail(run_id: int) -> dict:
    return api.run_detail(run_id)


@st.cache_data(ttl=RESULTS_S, show_spinner=False)
def compare(run_ids: tuple[int, ...]) -> list[dict]:
    return api.compare(list(run_ids))


@st.cache_data(ttl=RESULTS_S, show_spinner="Pairing the two arms…")
def paired(runs_a: tuple[int, ...], runs_b: tuple[int, ...]) -> dict:
    return api.paired(list(runs_a), list(runs_b))


@st.cache_data(ttl=RESULTS_S, show_spinner=False)
def predictions(run_ids: tuple[int, ...]) -> list[dict]:
    return api.predictions(list(run_ids))


@st.cache_data(ttl=LIVE_S, show_spinner=False)
def plan(matrix: dict) -> dict:
    return api.plan_matrix(matrix)


@st.cache_data(ttl=SLOW_S, show_spinner="A worker is building the training sequences…")
def preview(config: dict, conditions: list[dict], n: int = 1, split: str = "train") -> list[dict]:
    """Raises TimeoutError when no worker answers (errors are never cached, so a retry asks again)."""
    timeout = float(os.environ.get("COTDISTILL_PREVIEW_TIMEOUT") or PREVIEW_TIMEOUT_S)
    return api.preview(config, conditions, n=n, split=split, timeout=timeout)


def forget_runs() -> None:
    """Drop cached run state after an action, so the next read shows its effect."""
    for cached in (experiments, runs, runs_by_id, run_detail, compare, plan):
        cached.clear()
