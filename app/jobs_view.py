"""Jobs other than runs (teacher generation, attribution) as the Teacher and Key tokens screens show
them: the live table, the picked job's cancel and retry, and a failed job's stored error.

    jobs_view.table(rows, columns=lambda job: {...}, key="generation_jobs")   # in st.fragment(run_every=2)
    job = jobs_view.pick(rows, key="teacher_job")
    jobs_view.actions(job, key="teacher"); jobs_view.error(job)
"""

from __future__ import annotations

from typing import Callable

import pandas as pd
import streamlit as st

from app import queries, tables
from app.components import format_duration
from app.safe import md
from worker import api

REFRESH_S = 2
MESSAGE = "jobs_message"


def progress_of(job: dict) -> tuple[float, str]:
    """(fraction done, phase text): `phase step/total` while running, from the job's heartbeat."""
    p, status = job["progress"] or {}, job["status"]
    if status == "succeeded":
        return 1.0, "done"
    if status == "queued":
        return 0.0, "queued" + (f" (retry {job['attempt']})" if job["attempt"] else "")
    total = p.get("total") or job.get("total_steps")
    step = p.get("step", job["step"]) or 0
    text = f"{p.get('phase') or status} {step}/{total}" if total else (p.get("phase") or status)
    if status != "running":
        text = f"{status} at {text}"
    return (step / total if total else 0.0), text


def label(job: dict) -> str:
    return f"#{job['id']} · {job['name'] or job['kind']} · {job['status']}"


def table(rows: list[dict], columns: Callable[[dict], dict], *, key: str,
          formats: dict[str, str] | None = None) -> pd.DataFrame:
    """One line per job: status, progress, the kind's own `columns(job)` (number `formats` by column,
    e.g. {"teacher accuracy": "%.3f"}), ETA, worker and attempt."""
    lines = []
    for job in rows:
        fraction, phase = progress_of(job)
        running = job["status"] == "running"
        lines.append({"job": job["id"], "name": job["name"] or "", "status": job["status"],
                      "waiting for": job.get("waiting") or "", "progress": fraction, "phase": phase, **columns(job),
                      "ETA": format_duration((job["progress"] or {}).get("eta_s")) if running else "",
                      "worker": job["worker"] or "", "attempt": job["attempt"]})
    frame = pd.DataFrame(lines)
    tables.show(frame, key=key, column_config={
        "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent"),
        **{c: st.column_config.NumberColumn(format=f) for c, f in (formats or {}).items()}})
    if any(j["status"] == "queued" for j in rows) and not tables.live_capacity(queries.workers()):
        st.warning("No worker is taking jobs (queue `gpu`): queued jobs wait until one starts (`cotdistill up`, "
                   "or `cotdistill worker --queues gpu`).", icon=":material/warning:")
    return frame


def pick(rows: list[dict], *, key: str, label_text: str = "Job") -> dict | None:
    """A select box of the jobs, newest first. A screen that submits a job preselects it by setting
    `st.session_state[key] = job_id` before rerunning."""
    if not rows:
        return None
    by_id = {j["id"]: j for j in rows}
    if key in st.session_state and st.session_state[key] not in by_id:
        del st.session_state[key]
    return by_id[st.selectbox(label_text, list(by_id), format_func=lambda i: label(by_id[i]), key=key)]


def actions(job: dict, *, key: str) -> None:
    """Cancel a queued or running job; retry a failed or cancelled one (it skips what it stored)."""
    message = st.session_state.pop(MESSAGE, None)
    if message:
        st.success(message)                                 # text: this module's own sentences
    cols = st.columns([1, 1, 4])
    if cols[0].button("Cancel job", key=f"{key}_cancel", disabled=job["status"] not in ("queued", "running")):
        status = api.cancel_job(job["id"])
        _done(f"Job #{job['id']}: {status}" + (" (it stops at its next batch)" if status == "running" else ""))
    if cols[1].button("Retry job", key=f"{key}_retry", disabled=job["status"] not in ("failed", "cancelled")):
        queued = api.retry_job(job["id"])
        _done(f"Job #{job['id']} queued again (attempt {job['attempt'] + 1}); it skips what it already stored"
              if queued else f"Job #{job['id']} is {job['status']}: only failed or cancelled jobs can be retried")


def error(job: dict) -> None:
    """A failed job's stored error, first line as the title."""
    if not job["error"]:
        return
    first = job["error"].strip().splitlines()[0] if job["error"].strip() else job["error"]
    with st.expander(f"Job #{job['id']} {job['status']}: {first[:160]}", icon=":material/error:",
                     expanded=job["status"] == "failed"):
        st.code(job["error"], language=None)


def submit(start: Callable[[], int], *, picker: str, message_key: str,
           describe: Callable[[int], str]) -> bool:
    """Start a job from a form: on success the job picker preselects it and `describe(job_id)` shows
    after the rerun (show_message); a refused job says why at once and returns False."""
    try:
        job_id = start()
    except ValueError as e:
        st.error(f"Not started: {md(e)}")
        return False
    st.session_state[picker] = job_id
    st.session_state[message_key] = describe(job_id)
    queries.forget_jobs()
    st.rerun()


def show_message(message_key: str) -> None:
    message = st.session_state.pop(message_key, None)
    if message:
        st.success(message)                                 # text: this module's own sentences


def _done(message: str) -> None:
    st.session_state[MESSAGE] = message
    queries.forget_jobs()
    st.rerun()
