"""Key tokens: score each rationale word's importance for the gold label (a finished `before` run, an
untrained student or a model as the scorer; integrated gradients, gradient × input or occlusion); watch
the attribution jobs live; read one example's rationale shaded by score; see which words are most often
key (content, function, or naming the answer); queue the key-token study in one click; and read a
study's accuracy against k, key tokens next to random words, with the full rationale and the label only
as references."""

import streamlit as st

from app import jobs_view, key_tokens_view, queries

st.title("Key tokens")

st.subheader("Compute attributions")
source, config = key_tokens_view.source_section()
scope = str(source.get("run_id", next(iter(source)))) if source else "none"
data = key_tokens_view.data_section(queries.datasets(), config, scope, queries.rationale_sets())
method = key_tokens_view.method_section(data)
key_tokens_view.submit_section(source, data, method)

st.subheader("Attribution jobs")


@st.fragment(run_every=jobs_view.REFRESH_S)
def live_jobs() -> None:
    rows = queries.jobs("attribution")
    if not rows:
        key_tokens_view.no_jobs()
        return
    jobs_view.table(rows, key_tokens_view.job_columns, key="attribution_jobs", formats=key_tokens_view.FORMATS)


live_jobs()
job = jobs_view.pick(queries.jobs("attribution"), key=key_tokens_view.JOB_PICKER)
if job:
    jobs_view.actions(job, key="attribution")
    jobs_view.error(job)

st.subheader("One example's rationale, word by word")
attribution = key_tokens_view.pick_attribution()
if attribution:
    key_tokens_view.example_scores(attribution)

    st.subheader("The most frequent key tokens")
    key_tokens_view.frequent_tokens(attribution)

    st.subheader("Key-token study")
    key_tokens_view.study_section(attribution)

st.subheader("Accuracy against k")
key_tokens_view.accuracy_vs_k()
