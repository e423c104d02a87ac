"""Launch: three lines on what the tool does and what the default experiment will show; the presets;
the plan's summary (runs, new or reused, expected duration, disk) and the Launch button, then what was
queued — all at the top. Below, the details: start from scratch, a preset or an earlier experiment
(edit and relaunch, also `?from=NAME`); datasets (or a rationale set), students, placements,
perturbations, seeds and training settings; the memory of each cell and its GPU-hours; the exact
training sequences."""

from datetime import datetime

import streamlit as st

from app import forms, launch_view, queries
from app import matrix as mx

st.title("Launch an experiment")
options = queries.launch_options()
launch_view.intro(options)
launch_view.presets(options)
top = st.container(border=True)              # the summary and the button: filled once the form is read

st.subheader("Details")
sets = queries.rationale_sets()
earlier = forms.relaunch_section(queries.experiments(), sets, options)

st.session_state.setdefault("launch_name", f"exp-{datetime.now():%Y%m%d-%H%M%S}")
name = st.text_input("Experiment name", key="launch_name")

# The form's sections hold expanders of their own, and expanders do not nest: sections, not expanders.
st.markdown("##### Data and students")
first = options["first_run"]
datasets, data = forms.data_section(queries.datasets(), sets, earlier, default_options=first["data_options"])
students = mx.with_earlier(forms.student_section(options, earlier), earlier.get("student_entries"))

st.markdown("##### Rationale: placement and perturbation")
placements = st.multiselect("Placements", options["placements"],
                            default=[p for p in earlier.get("placements", first["placements"]) if p in options["placements"]],
                            help="none: label only · before: rationale → label · after: label → rationale")
perturbations = forms.perturbation_section(options["perturbations"], earlier, first["perturbations"],
                                           options.get("levels"))
if "none" in placements and any(p["kind"] != "none" for p in perturbations):
    st.caption("Placement `none` trains on the label only: its perturbation cells train identical models.")

st.markdown("##### Seeds and training")
seeds = forms.seeds_input(earlier)
train, evaluation = forms.training_section(options["defaults"], earlier)
baseline = forms.baseline_input()

error = None
try:
    matrix = mx.build_matrix(name, datasets=datasets, students=students, placements=placements,
                             perturbations=perturbations, seeds=seeds, data=data, train=train, eval=evaluation,
                             base=earlier.get("base"), more_factors=earlier.get("kept_factors"), baseline=baseline)
except ValueError as e:
    matrix, error = None, str(e)
plan, _ = forms.plan_of(matrix)
forms.plan_details(matrix, plan)

with st.expander("Memory, GPU-hours and disk per cell"):
    forms.estimate_section(matrix, plan)

with st.expander("What the student is trained on"):
    forms.preview_section(plan, mx.conditions(placements, perturbations))

with top:
    launch_view.summary(matrix, error)
