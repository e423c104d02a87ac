"""The Compare page's sections: which runs, the accuracy bars, the numbers (and their CSV), the
training curves, and the paired comparison of two arms.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app import charts, queries, tables
from app.components import empty_state, experiment_picker, run_label


def pick_runs() -> tuple[list[dict], str]:
    """The runs to compare: one experiment's cells, or runs chosen one by one. Returns (runs, name)."""
    source = st.radio("Compare", ["an experiment", "chosen runs"], horizontal=True, key="compare_source",
                      index=1 if st.query_params.get("runs") else 0)
    if source == "an experiment":
        experiment = experiment_picker(key="compare_experiment")
        if experiment is None:
            return [], ""
        return queries.runs(experiment["id"]), experiment["name"]
    everything = {r["id"]: r for r in queries.runs(None) if r["status"] == "succeeded"}
    wanted = [int(i) for i in st.query_params.get("runs", "").split(",") if i.strip().isdigit()]
    chosen = st.multiselect("Runs", list(everything), default=[i for i in wanted if i in everything],
                            format_func=lambda i: run_label(everything[i]), key="compare_runs")
    if chosen:
        st.query_params["runs"] = ",".join(map(str, chosen))
    else:
        st.query_params.pop("runs", None)
    return [everything[i] for i in chosen], "runs-" + "-".join(map(str, chosen))


def no_results(rows: list[dict]) -> None:
    if not rows:
        empty_state("Nothing to compare yet: launch an experiment, or choose finished runs.",
                    page="screens/launch.py", label="Launch an experiment")
        return
    waiting = sum(r["status"] in ("queued", "running") for r in rows)
    empty_state(f"None of these {len(rows)} run(s) has finished yet ({waiting} queued or running): "
                f"the bars appear as soon as one succeeds.", page="screens/runs.py", label="Watch the runs")


def accuracy_bars(arms: list[dict], notes: dict[int, str]) -> None:
    st.plotly_chart(charts.accuracy_bars(arms, notes), key="accuracy_bars")
    st.caption("Bars: mean test accuracy over seeds, with its 95% t-interval; dots: one per seed "
               "(a cross marks a run that answers a constant label).")
    collapsed = [(a, r) for a in arms for r, c in zip(a["runs"], a.get("collapsed") or []) if c]
    if collapsed:
        hit = ", ".join(sorted({a["arm"] for a, _ in collapsed}))
        st.warning(f"⚠ {len(collapsed)} run(s) not distinguishable from a constant answer (arms {hit}): "
                   f"their accuracy says little about what they learned.")
        with st.expander("Why, run by run"):
            st.markdown("\n".join(f"- run #{r} ({a['arm']}, {a['dataset']}, {a['student']}): "
                                   f"{notes.get(r, 'not distinguishable from a constant answer')}"
                                   for a, r in collapsed))


def numbers(arms: list[dict], notes: dict[int, str], name: str) -> None:
    frame = tables.compare_frame(arms, notes)
    st.dataframe(frame, hide_index=True, key="compare_table",
                 column_config={c: st.column_config.NumberColumn(format="%.3f") for c in ("mean", "low", "high")})
    st.download_button("Download as CSV", frame.to_csv(index=False).encode("utf-8"),
                       file_name=f"{name or 'comparison'}-accuracy.csv", mime="text/csv", key="download_csv")


def curves(rows: list[dict]) -> None:
    finished = [r for r in rows if r["status"] in ("succeeded", "running")]
    points = queries.curves(tuple(r["id"] for r in finished))
    if not points:
        st.caption("No training curve recorded yet.")
        return
    labels = {r["id"]: f"{r['arm']} · seed {r['seed']} (#{r['id']})" for r in finished}
    groups = {r["id"]: f"{r['dataset']} · {r['student']} · {r['arm']}" for r in finished}
    st.plotly_chart(charts.loss_curves(points, labels, groups), key="loss_curves")


def paired(arms: list[dict]) -> None:
    """Arm A against arm B on the same test items: difference, McNemar, and the examples that differ."""
    if len(arms) < 2:
        st.caption("A paired comparison needs two arms with finished runs.")
        return
    names = {a["arm_key"]: f"{a['dataset']} · {a['student']} · {a['arm']}" for a in arms}
    left, right = st.columns(2)
    a = left.selectbox("Arm A", list(names), format_func=names.get, key="arm_a", index=len(names) - 1)
    b = right.selectbox("Arm B", list(names), format_func=names.get, key="arm_b", index=0)
    if a == b:
        st.caption("Choose two different arms.")
        return
    arm_a, arm_b = (next(x for x in arms if x["arm_key"] == k) for k in (a, b))
    try:
        result = queries.paired(tuple(arm_a["runs"]), tuple(arm_b["runs"]))
    except ValueError as e:
        st.error(str(e))
        return
    _paired_result(result, arm_a, arm_b)


def _paired_result(result: dict, arm_a: dict, arm_b: dict) -> None:
    warning = (result.get("basis") or {}).get("warning")
    if warning:
        st.error(f"⚠ Both arms answer a constant label: {warning}", icon=":material/warning:")
    cols = st.columns(4)
    cols[0].metric("A − B accuracy", f"{result['diff']:+.3f}", help="paired bootstrap over the pooled items")
    cols[1].metric("95% interval", f"[{result['low']:+.3f}, {result['high']:+.3f}]")
    cols[2].metric("McNemar p", f"{result['p_value']:.3g}")
    cols[3].metric("items (pairs of runs)", f"{result['n_items']} ({len(result['pairs'])})")
    st.caption(f"A right and B wrong on {result['a_only']} item(s); B right and A wrong on {result['b_only']}.")
    examples = result["examples"]
    if not examples:
        st.caption("The two arms agree on every item.")
        return
    fixes = [e for e in examples if e["fixes"]]
    breaks = [e for e in examples if e["breaks"]]
    left, right = st.columns(2)
    with left:
        st.markdown(f"**A fixes** ({arm_a['arm']} right, {arm_b['arm']} wrong): {len(fixes)} example(s)")
        st.dataframe(_example_frame(fixes), hide_index=True, key="fixes")
    with right:
        st.markdown(f"**A breaks** ({arm_a['arm']} wrong, {arm_b['arm']} right): {len(breaks)} example(s)")
        st.dataframe(_example_frame(breaks), hide_index=True, key="breaks")


def _example_frame(examples: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"example": e["example_id"], "fixes": e["fixes"], "breaks": e["breaks"],
                          "pairs": e["pairs"], "consistent across seeds": "yes" if e["consistent"] else "no"}
                         for e in examples], columns=["example", "fixes", "breaks", "pairs", "consistent across seeds"])
