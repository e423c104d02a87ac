"""The Datasets screen's self-test panel: run the control suite on the workers and read its verdicts."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import tables
from app.safe import md
from worker import api

EXPLAIN = ("The self-test trains the tiny student on the built-in counting task, where what each arm "
           "must show follows from how the task is built: the true rationale after the label must beat "
           "label-only significantly (positive control); a rationale whose every colour is random and "
           "filler must not (negative controls); a rationale that states the answer must be flagged as a "
           "leak. It validates the tool, not the study's claims on real data.")


PROCEDURE = ("Judged by the procedure: the difference is the mean over seed pairs of each pair's accuracy "
             "difference, with a paired t interval and p (seeds are the unit, as on Compare); the positive "
             "control must be significant and at least {gain:+.2f}. The test-set columns (these trained models "
             "on these items) are shown for reading only. A negative control whose arm and label-only both "
             "answer a constant label in most seed pairs passes but is marked weak: it then shows only that no "
             "gain was invented.")


def panel() -> None:
    st.caption(EXPLAIN)                                     # text: a constant
    status = api.selftest_status()
    if st.button("Run the self-test", key="selftest_start",
                 help="Queues 12 runs of the tiny student (3 seeds × 4 arms); finished runs are reused."):
        try:
            result = api.start_selftest()
        except Exception as e:                    # a database or broker problem: one sentence
            st.error(f"Could not start the self-test: {md(e)}")
        else:
            n = len(result["queued"])
            st.success(f"Self-test queued: {n} new run(s), {len(result['reused']) + len(result['kept'])} "  # text: counts
                       f"already done. Its runs are on the Runs screen (experiment `selftest`).")
            status = api.selftest_status()
    show(status)


def show(status: dict) -> None:
    if status["state"] == "none":
        st.info("The self-test has not run yet: press **Run the self-test** (a few minutes with two workers).")
        return
    if status["state"] == "running":
        st.info(f"Self-test running: {int(status['done'])} of {int(status['total'])} runs finished. Reload to update.")
        return
    if status["state"] == "failed":
        st.error(md(status["verdict"]))
        return
    rows = [{"control": r["control"], "arm": r["arm"], "expected": r["expected"], "found": r["found"],
             "difference vs label-only": r["diff"], "low": r["low"], "high": r["high"], "p": r["p_value"],
             "seed pairs": r.get("n_pairs"), "test set low": r.get("test_low"), "test set high": r.get("test_high"),
             "test set p": r.get("test_p"), "passed": "yes" if r["passed"] else "NO"} for r in status["results"]]
    tables.show(pd.DataFrame(rows), key="selftest_results")
    st.caption(PROCEDURE.format(gain=status.get("min_gain") or 0.0))   # text: our sentence and a number
    (st.success if status["passed"] else st.error)(status["verdict"])
