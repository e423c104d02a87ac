"""Warnings about the data runs were trained and tested on, read from their summaries'
`data_warnings` (cotdistill.data.report.run_data_check): test questions that also occur among the
training questions, and training rationales that name the gold answer (warned from the rate of
$COTDISTILL_LEAK_WARN_RATE on the workers, default 10%). Shown on Compare for the runs compared and
on Runs for one run; a run finished before these checks existed has none and shows nothing.
"""

from __future__ import annotations

import streamlit as st
from app.safe import md


def runs_warning(rows: list[dict]) -> None:
    """One warning for the finished runs among `rows` whose data overlaps or leaks, each distinct
    sentence once with the runs it concerns."""
    done = [r for r in rows if r["status"] == "succeeded"]
    by_warning: dict[str, list[int]] = {}
    for r in done:
        for warning in (r.get("summary") or {}).get("data_warnings") or ():
            by_warning.setdefault(warning, []).append(r["id"])
    if not by_warning:
        return
    flagged = {i for ids in by_warning.values() for i in ids}
    st.warning(f"⚠ Data: {len(flagged)} of the {len(done)} finished run(s) compared were trained or tested on "  # text: counts
               f"data with train/test overlap or answer leaks; their accuracy may not measure what the "
               f"comparison is about.\n\n" +
               "\n".join(f"- {md(warning)} (run(s) {', '.join(f'#{int(i)}' for i in ids)})"
                         for warning, ids in by_warning.items()),
               icon=":material/warning:")


def run_warning(run: dict) -> None:
    """One run's data warnings, if its summary has any."""
    warnings = (run.get("summary") or {}).get("data_warnings") or []
    if warnings:
        st.warning(f"⚠ Run #{int(run['id'])}'s data:\n\n" + "\n".join(f"- {md(w)}" for w in warnings),
                   icon=":material/warning:")
