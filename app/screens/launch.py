"""Launch: start from scratch or from an earlier experiment (edit and relaunch, also `?from=NAME`);
choose datasets (or a rationale set), students, placements, perturbations, seeds and training
settings; see how many runs that makes, how many already exist, the GPU memory of each cell and the
GPU-hours; look at the exact training sequences; launch."""

from datetime import datetime

import streamlit as st

from app import forms, queries
from app import matrix as mx

st.title("Launch an experiment")
options = queries.launch_options()
sets = queries.rationale_sets()
earlier = forms.relaunch_section(queries.experiments(), sets, options)

st.session_state.setdefault("launch_name", f"exp-{datetime.now():%Y%m%d-%H%M%S}")
name = st.text_input("Experiment name", key="launch_name")

st.subheader("Data and students")
first = options["first_run"]
datasets, data = forms.data_section(queries.datasets(), sets, earlier, default_options=first["data_options"])
students = mx.with_earlier(forms.student_section(options, earlier), earlier.get("student_entries"))

st.subheader("Rationale: placement and perturbation")
placements = st.multiselect("Placements", options["placements"],
                            default=[p for p in earlier.get("placements", first["placements"]) if p in options["placements"]],
                            help="none: label only · before: rationale → label · after: label → rationale")
perturbations = forms.perturbation_section(options["perturbations"], earlier, first["perturbations"],
                                           options.get("levels"))
if "none" in placements and any(p["kind"] != "none" for p in perturbations):
    st.caption("Placement `none` trains on the label only: its perturbation cells train identical models.")

st.subheader("Seeds and training")
seeds = forms.seeds_input(earlier)
train, evaluation = forms.training_section(options["defaults"], earlier)
baseline = forms.baseline_input()

st.subheader("Plan")
st.caption("Cells that already exist are not run again: an identical finished run is reused.")
try:
    matrix = mx.build_matrix(name, datasets=datasets, students=students, placements=placements,
                             perturbations=perturbations, seeds=seeds, data=data, train=train, eval=evaluation,
                             base=earlier.get("base"), more_factors=earlier.get("kept_factors"), baseline=baseline)
except ValueError as e:
    matrix = None
    st.error(str(e))
plan = forms.plan_section(matrix)
forms.estimate_section(matrix, plan)

st.subheader("What the student is trained on")
forms.preview_section(plan, mx.conditions(placements, perturbations))

st.subheader("Launch")
forms.launch_section(matrix, plan)
