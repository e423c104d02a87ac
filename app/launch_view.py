"""The top of the Launch page, in reach without scrolling: what the tool does and what the default
experiment will show (three lines), the presets, then the plan's summary (runs, new or reused,
expected duration, disk) with the Launch button, and, once launched, what was queued with links to it.

    launch_view.intro(options); launch_view.presets(options)
    top = st.container()                    # placed first, filled once the form below is read
    with top:
        launch_view.summary(matrix, error)

The form that sets the matrix is drawn below this part (app/forms.py); the screen fills the
container last, so the summary and the button come first on the page and in its element tree.
"""

from __future__ import annotations

import streamlit as st

from app import forms, queries, tables
from app.components import format_bytes
from app.safe import code, md
from worker import api

INTRO = ("**cotdistill** fine-tunes small students on a teacher's chain-of-thought rationales, placed before or "
         "after the label and perturbed or not, and compares the arms with seeds as the unit.")
MEASURING_REFRESH_S = 3
LAUNCHED = "launched"


def arm_names(placements: list[str], kinds: list[str]) -> list[str]:
    """The arms a matrix of these placements and perturbation kinds trains, in words (label-only
    ignores the perturbation, so it is one arm)."""
    names = []
    for p in placements:
        for k in kinds:
            name = "label-only" if p == "none" else p if k == "none" else f"{p} · {k}"
            if name not in names:
                names.append(name)
    return names


def intro(options: dict) -> None:
    """Three lines: what the tool does, what the default experiment is, what it should show."""
    first = options["first_run"]
    student = first.get("student") or {}
    who = "a tiny student trained from scratch" if student.get("name") == "tiny" else code(student.get("name"))
    arms = ", ".join(code(a) for a in arm_names(first["placements"], first["perturbations"]))
    lines = [INTRO, f"**The default experiment**, set in the form below: {arms}, {len(first['seeds'])} seeds "
                    f"each, {who} on {code(first.get('dataset'))}."]
    if first.get("claims"):
        lines.append("**It should show:** " + "; ".join(first["claims"]) + ".")
    st.markdown("  \n".join(lines))                       # text: the API's claims and escaped names


def presets(options: dict) -> None:
    """One button per preset (each fills the form below), with what it shows and its expected duration."""
    found = options.get("presets") or []
    if not found:
        return
    cols = st.columns([1] + [2] * len(found))
    cols[0].markdown("Or start from a preset:")
    for col, p in zip(cols[1:], found):
        col.button(p["title"] + (f" · {p['expected']}" if p["expected"] else ""), key=f"preset_{p['key']}",
                   on_click=forms.choose_preset, args=(p["title"],), help=p["shows"] or None,
                   use_container_width=True)


def summary(matrix: dict | None, error: str | None) -> None:
    """The plan's summary and the Launch button; while a worker measures this machine's speed for the
    estimate, redrawn every MEASURING_REFRESH_S seconds until it can say."""
    plan, problem = forms.plan_of(matrix)
    if plan is not None and plan["estimate"].get("measuring"):
        _measuring(matrix, error)
    else:
        _summary(matrix, plan, error or problem)


@st.fragment(run_every=MEASURING_REFRESH_S)
def _measuring(matrix: dict | None, error: str | None) -> None:
    plan, problem = forms.plan_of(matrix)
    _summary(matrix, plan, error or problem)
    if plan is not None and not plan["estimate"].get("measuring"):
        st.rerun()                               # measured: the page once more, no longer refreshing


def _summary(matrix: dict | None, plan: dict | None, error: str | None) -> None:
    launched = st.session_state.get(LAUNCHED)
    if launched and launched["name"] != (matrix or {}).get("name"):
        launched = None
    if launched:
        _launched(launched)
    if error:
        st.error(md(error))
    cols = st.columns([1, 1, 1, 1, 2], vertical_alignment="center")
    if plan is not None:
        cols[0].metric("Runs in the matrix", plan["runs"])
        cols[1].metric("New runs", plan["new"])
        cols[2].metric("Reused", plan["reused"], help="identical runs that succeeded elsewhere: not run again")
        cols[3].metric("In this experiment", plan["in_experiment"],
                       help=f"runs experiment {md(repr(matrix['name']))} already holds (queued, running or finished)")
    with cols[4]:
        _launch_button(matrix, plan)
    if plan is not None:
        st.markdown(plan_sentence(matrix["name"], plan, launched), help=tables.ESTIMATE_HOW)  # text: md() inside
    elif not error:
        st.info("Fill in the form below: the plan and the Launch button show here.", icon=":material/info:")


def plan_sentence(name: str, plan: dict, launched: dict | None = None) -> str:
    """What launching would do, or, once launched, what was queued; with the expected duration and the
    disk one run needs."""
    if plan["in_experiment"] == plan["runs"]:
        done = plan["in_experiment"] - plan["queued"]
        if launched:
            text = f"Queued {len(launched['queued'])} run(s) of experiment {md(repr(name))}"
            if len(launched["queued"]) != plan["runs"]:
                text += f" ({plan['runs']} in all: {plan['queued']} queued or running, {done} finished)"
        else:
            text = (f"Experiment {md(repr(name))} holds all {plan['runs']} run(s): {plan['queued']} queued or running, "
                    f"{done} finished. Nothing new to launch")
        expected = tables.estimate_text(queries.estimate(launched["experiment_id"])) if launched else None
        return text + "." + (f" {expected}" if expected else "")
    parts = [f"{plan['new']} new run(s)"]
    if plan["reused"]:
        parts.append(f"{plan['reused']} reused from identical finished runs")
    if plan["in_experiment"]:
        parts.append(f"{plan['in_experiment']} already in experiment {md(repr(name))}")
    text = "Launching queues " + ", ".join(parts) + "."
    if plan["new"] and (expected := tables.estimate_text(plan["estimate"], planned=True)):
        text += f" {expected}"
    if plan["new"] and plan.get("disk") and plan["disk"]["peak"]:
        d = plan["disk"]
        text += (f" Disk per run: up to {format_bytes(d['peak'])} of checkpoints while it trains (deleted when "
                 f"it ends), {format_bytes(d['model'])} for the model it keeps.")
    return text


def _launch_button(matrix: dict | None, plan: dict | None) -> None:
    """Launch: disabled when there is no valid plan or nothing left to launch (every run already in
    this experiment); a very large matrix asks for a confirmation first."""
    large = plan is not None and plan["cells"] > plan.get("confirm_above", 500)
    confirmed = large and st.checkbox(f"Yes, submit all {plan['cells']} cells (more than "
                                      f"{plan.get('confirm_above', 500)})", key="launch_confirm")
    nothing = plan is not None and plan["in_experiment"] == plan["runs"]
    if plan is None or nothing:
        label = "Nothing new to launch" if nothing else "Launch"
    elif plan["new"] or not plan["reused"]:
        label = f"Launch {plan['new']} new run(s)"
    else:
        label = f"Launch: reuse {plan['reused']} finished run(s)"
    if st.button(label, type="secondary" if nothing else "primary", key="launch", use_container_width=True,
                 disabled=plan is None or nothing or (large and not confirmed)):
        try:
            st.session_state[LAUNCHED] = api.submit_matrix(matrix, confirm=confirmed)
        except ValueError as e:
            st.error(f"Not launched: {md(e)}")
        else:
            queries.forget_runs()
            st.rerun()                      # the plan now counts the launched runs


def _launched(launched: dict) -> None:
    """What the last launch did, at the top, with links to its runs and its comparison."""
    st.session_state["experiment"] = launched["name"]
    st.success(f"Launched experiment {md(repr(launched['name']))}: {len(launched['queued'])} run(s) queued, "
               f"{len(launched['reused'])} reused from identical finished runs, {len(launched['kept'])} kept, "
               f"{len(launched.get('shared', []))} shared with identical queued/running runs, "
               f"{len(launched.get('duplicates', []))} duplicate cell(s), {len(launched.get('outdated', []))} "
               f"older-results-version run(s) not reused.")
    left, right, _ = st.columns([1, 1, 2])
    with left:
        st.page_link("screens/runs.py", label="Watch its runs", icon=":material/monitoring:",
                     query_params={"experiment": launched["name"]})
    with right:
        st.page_link("screens/compare.py", label="Compare its arms", icon=":material/bar_chart:",
                     query_params={"experiment": launched["name"]})
