"""Cached reads of the jobs API (worker/api/), the app's only door to the system.

    rows = queries.runs(experiment_id)        # cached a second: a page refreshing every few seconds reads once
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
def curves(run_ids: tuple[int, ...], name: str = "loss", x: str = "step") -> list[dict]:
    return api.curves(list(run_ids), name, x)


@st.cache_data(ttl=LIVE_S, show_spinner=False)
def workers() -> list[dict]:
    """The workers that announced themselves, alive or gone (worker/presence.py)."""
    return api.list_workers()


@st.cache_data(ttl=LIVE_S, show_spinner=False)
def estimate(experiment_id: int | None) -> dict:
    """How long the experiment's unfinished runs still need, None: every unfinished run (worker/estimate.py)."""
    return api.experiment_estimate(experiment_id)


@st.cache_data(ttl=LIVE_S, show_spinner=False)
def run_detail(run_id: int) -> dict:
    return api.run_detail(run_id)


@st.cache_data(ttl=RESULTS_S, show_spinner=False)
def compare(run_ids: tuple[int, ...], scoring: str | None = None) -> list[dict]:
    return api.compare(list(run_ids), scoring=scoring)


@st.cache_data(ttl=RESULTS_S, show_spinner="Pairing the two arms…")
def paired(runs_a: tuple[int, ...], runs_b: tuple[int, ...], scoring: str | None = None) -> dict:
    return api.paired(list(runs_a), list(runs_b), scoring=scoring)


@st.cache_data(ttl=RESULTS_S, show_spinner="Comparing every arm with the reference…")
def versus_reference(run_ids: tuple[int, ...], reference: str | None, scoring: str | None = None) -> dict:
    return api.versus_reference(list(run_ids), reference, scoring=scoring)


def reference_choices(arms: list[dict]) -> dict[str, str]:
    """{row key: label} of the arms a reference can be chosen from (no query: pure)."""
    return api.reference_choices(arms)


def default_reference(arms: list[dict]) -> str:
    """The row key of the default reference arm: the label-only arm when there is exactly one."""
    return api.default_reference(arms)


@st.cache_data(ttl=SLOW_S, show_spinner=False)
def seed_budget(per_pair_diff: tuple[float, ...], target: float | None) -> dict:
    return api.seed_budget(list(per_pair_diff), target)


@st.cache_data(ttl=RESULTS_S, show_spinner="Checking the answers under this scoring…")
def mode_diagnostics(run_ids: tuple[int, ...], scoring: str) -> dict[int, dict]:
    return api.mode_diagnostics(list(run_ids), scoring)


@st.cache_data(ttl=RESULTS_S, show_spinner=False)
def predictions(run_ids: tuple[int, ...]) -> list[dict]:
    return api.predictions(list(run_ids))


@st.cache_data(ttl=LIVE_S, show_spinner=False)
def plan(matrix: dict) -> dict:
    return api.plan_matrix(matrix)


@st.cache_data(ttl=RESULTS_S, show_spinner="Estimating memory and GPU-hours…")
def memory_estimate(matrix: dict, gpu_gib: float, tokens_per_s: float | None = None) -> dict:
    """Raises TimeoutError when no worker reads the students' shapes (errors are never cached)."""
    timeout = float(os.environ.get("COTDISTILL_PREVIEW_TIMEOUT") or PREVIEW_TIMEOUT_S)
    return api.estimate_matrix(matrix, gpu_gib=gpu_gib, tokens_per_s=tokens_per_s, worker_timeout=timeout)


@st.cache_data(ttl=SLOW_S, show_spinner="A worker is building the training sequences…")
def preview(config: dict, conditions: list[dict], n: int = 1, split: str = "train") -> list[dict]:
    """Raises TimeoutError when no worker answers (errors are never cached, so a retry asks again)."""
    timeout = float(os.environ.get("COTDISTILL_PREVIEW_TIMEOUT") or PREVIEW_TIMEOUT_S)
    return api.preview(config, conditions, n=n, split=split, timeout=timeout)


# ------------------------------------------------------------------------------------------ jobs

@st.cache_data(ttl=LIVE_S, show_spinner=False)
def jobs(kind: str) -> list[dict]:
    """Generation or attribution jobs, newest first."""
    return api.list_jobs(kind=kind)


@st.cache_data(ttl=LIVE_S, show_spinner=False)
def generation_outputs(job_id: int, limit: int = 200) -> list[dict]:
    return api.generation_outputs(job_id, limit=limit)


@st.cache_data(ttl=SLOW_S, show_spinner=False)
def prompt_templates() -> dict[str, str]:
    return api.prompt_templates()


@st.cache_data(ttl=SLOW_S, show_spinner=False)
def prompt_problem(kind: str, template: str, rationalize: bool) -> str | None:
    return api.prompt_problem(kind, template, rationalize)


@st.cache_data(ttl=LIVE_S, show_spinner=False)
def attributions() -> list[dict]:
    return api.list_attributions()


@st.cache_data(ttl=RESULTS_S, show_spinner="Reading the scores…")
def attribution_scores(attribution_id: int, limit: int = 500) -> list[dict]:
    return api.attribution_scores(attribution_id, limit=limit)


@st.cache_data(ttl=SLOW_S, show_spinner="Reading the attributed examples…")
def attributed_examples(attribution_id: int) -> list[dict]:
    return api.attributed_examples(attribution_id)


@st.cache_data(ttl=RESULTS_S, show_spinner="Counting key tokens…")
def key_token_stats(attribution_id: int, k: int) -> list[dict]:
    return api.key_token_stats(attribution_id, k=k)


# ------------------------------------------------------------------------------------------ rationale sets

@st.cache_data(ttl=RESULTS_S, show_spinner=False)
def rationale_sets() -> list[dict]:
    return api.list_rationale_sets()


@st.cache_data(ttl=SLOW_S, show_spinner="Reading the set…")
def rationale_set_examples(set_id: int, split: str | None = None, search: str | None = None,
                           teacher_correct: bool | None = None, limit: int = 200) -> list[dict]:
    """Sets are immutable: their examples are cached for minutes."""
    return api.rationale_set_examples(set_id, split=split, search=search or None,
                                      teacher_correct=teacher_correct, limit=limit)


@st.cache_data(ttl=SLOW_S, show_spinner="Comparing the two sets…")
def compare_rationale_sets(set_a: int, set_b: int) -> dict:
    return api.compare_rationale_sets(set_a, set_b)


@st.cache_data(ttl=30, show_spinner="Reading the file…", max_entries=20)
def import_preview(files: dict, options: dict, rationales: dict | None = None) -> dict:
    """The live preview of an import (the page reruns on every widget change: read each file and
    mapping once, for half a minute; uploads are stored by content, so a new upload is a new key)."""
    return api.preview_import(files, options, rationales=rationales)


@st.cache_data(ttl=SLOW_S, show_spinner="Computing the data report…")
def rationale_set_report(set_id: int) -> dict:
    """Sets are immutable: their report is cached for minutes."""
    return api.rationale_set_report(set_id)


@st.cache_data(ttl=SLOW_S, show_spinner="Computing the data report…")
def dataset_report(name: str, splits: tuple[str, ...]) -> dict:
    return api.dataset_report(name, list(splits))


def forget_jobs() -> None:
    """Drop cached job state after an action (submit, cancel, retry)."""
    for cached in (jobs, generation_outputs, attributions, rationale_sets):
        cached.clear()


def forget_runs() -> None:
    """Drop cached run state after an action, so the next read shows its effect."""
    for cached in (experiments, runs, runs_by_id, run_detail, compare, versus_reference, plan, workers, estimate):
        cached.clear()


def report_zip(experiment: str, reference: str | None, scoring: str | None) -> bytes:
    """The experiment's report as a zip; not cached (it records when it was made)."""
    return api.report_zip(experiment, reference=reference, scoring=scoring)
