"""Teacher: have a teacher model write a rationale for every example of a dataset (a sample first);
watch the generation jobs live; cancel or retry one; read its outputs next to the gold labels. A
finished job is a rationale set, listed on the Datasets screen."""

import streamlit as st

from app import jobs_view, queries, teacher_view

st.title("Teacher")
st.caption("A teacher model answers each question with a chain of thought; its replies become a rationale "
           "set (immutable, with its provenance) that students train on.")

st.subheader("Data")
chosen = teacher_view.data_section(queries.datasets())
dataset, kind = chosen if chosen else (None, None)

st.subheader("Teacher model")
teacher = teacher_view.teacher_section()

st.subheader("Prompt")
prompt = teacher_view.prompt_section(kind) if kind else None

st.subheader("Decoding")
decoding, batch_size = teacher_view.decoding_section()

st.subheader("Start")
name = teacher_view.set_name_section(dataset, teacher)
teacher_view.start_section(dataset, teacher, prompt, decoding, batch_size, name)

st.subheader("Generation jobs")


@st.fragment(run_every=jobs_view.REFRESH_S)
def live_jobs() -> None:
    """The jobs table, the picker and the picked job, read once per refresh: the job's state is the same
    in all three (a picker drawn outside the refresh kept saying `running` after the job succeeded)."""
    rows = queries.jobs("generation")
    if not rows:
        teacher_view.no_jobs()
        return
    jobs_view.table(rows, teacher_view.job_columns, key="generation_jobs", formats=teacher_view.FORMATS)
    job = jobs_view.pick(rows, key=teacher_view.JOB_PICKER)
    teacher_view.job_status(job)
    jobs_view.actions(job, key="teacher")
    jobs_view.error(job)
    st.markdown("**Outputs next to gold**")
    teacher_view.outputs(job)


live_jobs()
