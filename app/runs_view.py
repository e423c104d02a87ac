"""The Runs page's sections: the live table, failed runs' errors, the actions on runs (with the chosen
run's history), and one finished run's answers (per-label accuracy, predicted against gold labels: the
fingerprint of a run that answers a constant label).

The page wraps them in `st.fragment(run_every=REFRESH_S)`: only that part reruns, every five
seconds: at two, an open Runs page took a sizeable share of a 2-core machine's CPU from the workers
whose runs it watches (13 % of one core with an empty table).
"""

from __future__ import annotations

import streamlit as st

from app import charts, data_warnings_view, queries, tables
from app.components import collapse_note, empty_state, run_label
from app.safe import code, md
from worker import api

REFRESH_S = 5
MAX_ERRORS_SHOWN = 20
MESSAGE = "runs_message"


def no_runs(experiment: dict | None) -> None:
    if experiment is None:
        empty_state("No runs yet. Launch an experiment: its runs appear here as soon as they are queued, "
                    "and start when a worker is up (`cotdistill up`).", page="screens/launch.py",
                    label="Launch an experiment")
    else:
        empty_state(f"Experiment {experiment['name']!r} has no runs.", page="screens/launch.py",
                    label="Launch one")


def status_line(rows: list[dict]) -> None:
    st.markdown(f"**{len(rows)} run(s):** {tables.status_counts(rows)}")  # text: counts of statuses
    present = queries.workers()
    st.caption(tables.workers_line(present))               # text: names escaped in workers_line
    if any(r["status"] == "queued" for r in rows) and not tables.live_capacity(present):
        st.warning("No worker is taking training runs (queue `gpu`): queued runs wait until one starts. "
                   "Start the embedded stack with `cotdistill up`, or a worker on a GPU machine with "
                   "`cotdistill worker --queues gpu`.", icon=":material/warning:")
    message = st.session_state.pop(MESSAGE, None)
    if message:
        st.success(message)                                 # text: this module's own sentences


def expected_duration(experiment: dict | None) -> dict | None:
    """How long the experiment (None: every unfinished run) still needs, behind the queue; returns the
    estimate (its ends_s give the table's ETA)."""
    est = queries.estimate(experiment["id"] if experiment else None)
    text = tables.estimate_text(est)
    if text:
        st.markdown(f"**{text}**", help=tables.ESTIMATE_HOW)  # text: estimate_text's numbers
    return est


def table(rows: list[dict], est: dict | None = None) -> None:
    points = queries.curves(tuple(r["id"] for r in rows))
    tables.show(tables.runs_frame(rows, points, ends=(est or {}).get("ends_s")),
                column_config=tables.runs_columns(), key="runs_table")


def failed_errors(rows: list[dict]) -> None:
    """Each failed run's stored error, readable in place (first line as the title)."""
    failed = [r for r in rows if r["status"] == "failed" or (r["status"] == "cancelled" and r["has_error"])]
    for r in failed[:MAX_ERRORS_SHOWN]:
        error = queries.run_detail(r["id"])["error"] or "(no error stored)"
        first = error.strip().splitlines()[0] if error.strip() else error
        with st.expander(f"Run #{r['id']} {r['status']}: {first[:160]}", icon=":material/error:"):
            st.code(error, language=None)
    if len(failed) > MAX_ERRORS_SHOWN:
        st.caption(f"…and {len(failed) - MAX_ERRORS_SHOWN} more (`cotdistill show RUN` prints any of them).")  # text: a count


def actions(rows: list[dict], experiment: dict | None) -> None:
    """Cancel or retry one run; re-queue every failed or cancelled cell of the experiment."""
    left, right = st.columns([3, 2])
    with left:
        by_id = {r["id"]: r for r in rows}
        # Options are ids with a stable label, so the choice survives the refresh of the statuses.
        run = by_id[st.selectbox("Run", list(by_id), format_func=lambda i: run_label(by_id[i]), key="action_run")]
        buttons = st.columns(2)
        if buttons[0].button("Cancel run", key="cancel", disabled=run["status"] not in ("queued", "running")):
            status = api.cancel(run["id"])
            _done(f"Run #{run['id']}: {status}" + (" (it stops at its next step)" if status == "running" else ""))
        if buttons[1].button("Retry run", key="retry", disabled=run["status"] not in ("failed", "cancelled")):
            result = api.retry(run["id"])
            _done(f"Run #{run['id']} queued again (attempt {run['attempt'] + 1})" if result["queued"]
                  else result["reason"])
        history(run["id"])
    with right:
        bad = [r for r in rows if r["status"] in ("failed", "cancelled")]
        if experiment is not None and st.button(f"Re-queue {len(bad)} failed/cancelled cell(s)",
                                                key="requeue", disabled=not bad):
            ids = api.requeue_failed(experiment["id"])
            _done(f"Re-queued run(s) {', '.join(map(str, ids))}" if ids else "Nothing to re-queue")


def history(run_id: int) -> None:
    """What happened to the chosen run that its status does not say (a corrupt checkpoint moved aside,
    the step it resumed from), one line per event; nothing when there is none."""
    events = queries.run_detail(run_id).get("history") or []
    if events:
        st.markdown(f"**History of run #{int(run_id)}**")
        for e in events:
            st.caption(f"attempt {int(e['attempt'])}: {md(e['message'])}")


def _done(message: str) -> None:
    st.session_state[MESSAGE] = message
    queries.forget_runs()
    st.rerun()


def answers(experiment: dict | None) -> None:
    """One finished run's accuracy per gold label, and its answers' distribution next to the gold
    labels', with the majority baseline: a collapsed run answers (nearly) one label everywhere."""
    done = {r["id"]: r for r in queries.runs(experiment["id"] if experiment else None) if r["status"] == "succeeded"}
    if not done:
        st.caption("A finished run's answers, label by label, show here.")
        return
    run = done[st.selectbox("Finished run", list(done), format_func=lambda i: run_label(done[i]), key="answers_run")]
    summary = run["summary"]
    data_warnings_view.run_warning(run)
    if not summary.get("per_label_accuracy"):
        st.caption("This run's summary has no per-label numbers (it was evaluated before they were recorded).")
        return
    cols = st.columns(4)
    cols[0].metric("Accuracy", f"{summary['accuracy']:.3f}" if summary.get("accuracy") is not None else "—")
    cols[1].metric("Majority baseline", f"{summary['majority_baseline']:.3f}",
                   help=f"always answering {summary.get('majority_label')!r}, the most frequent gold label")
    cols[2].metric("Most frequent answer", f"{summary.get('top_prediction')!r}",
                   help="the label this run answers most often")
    cols[3].metric("…on this share of items", f"{summary.get('top_prediction_share', 0):.0%}")
    if summary.get("unparsed_rate") is not None:
        forced = summary.get("forced") or 0
        st.caption(f"Unparsed: no label parsed from the generation on {summary['unparsed_rate']:.0%} of the "  # text: numbers
                   f"items ({forced} answer(s) forced by scoring the candidates after the answer marker).")
    note = collapse_note(summary)
    if note:
        st.warning(f"⚠ Run #{int(run['id'])}: {md(note)}")
    left, right = st.columns(2)
    with left:
        st.markdown("**Accuracy by gold label**")
        st.plotly_chart(charts.per_label_accuracy(summary), key="per_label_accuracy")
    with right:
        st.markdown("**Answers against gold labels**")
        st.plotly_chart(charts.answer_distribution(summary), key="answer_distribution")
    if summary.get("scoring"):
        st.caption(f"Under the run's own scoring, {code(summary['scoring'])}.")
    if summary.get("fine_tuned") is False:
        st.caption("The untouched student (train.steps 0): evaluated without fine-tuning, so it has no training curve.")
    env = summary.get("environment")
    if env:
        st.caption(f"Ran on {md(env.get('device'))} with {md(env.get('threads'))} CPU thread(s), torch {md(env.get('torch'))}, "
                   f"transformers {md(env.get('transformers'))}, Python {md(env.get('python'))}.")
