"""The Compare page's sections: which runs, the accuracy bars, the numbers (and their CSV), the
training curves, and the paired comparison of two arms.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from collections import Counter

from app import charts, queries, tables
from app.components import collapse_note, empty_state, experiment_picker, run_label

SCORINGS = {"letter": "letter: likelihood of the label as trained ('(c)')",
            "text": "text: mean per-token likelihood of the choice's text",
            "calibrated": "calibrated: a score minus its score under a content-free prompt (cancels a "
                          "preference for one label whatever the question)"}


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


def scoring_picker(rows: list[dict]) -> str | None:
    """The scoring mode the accuracies are read under: one of those every finished run computed
    (its summary's accuracy_by_mode), preset to the runs' own (primary) scoring. None when the runs
    computed no other mode (generate mode, older runs): each run's own accuracy is used."""
    done = [r for r in rows if r["status"] == "succeeded"]
    computed = [set(r["summary"].get("accuracy_by_mode") or {}) for r in done]
    common = set.intersection(*computed) if computed else set()
    if not common:
        return None
    modes = sorted(common, key=lambda m: (list(SCORINGS).index(m) if m in SCORINGS else len(SCORINGS), m))
    primary = Counter(r["summary"].get("scoring") for r in done).most_common(1)[0][0]
    mode = st.radio("Scoring", modes, index=modes.index(primary) if primary in modes else 0, horizontal=True,
                    key="compare_scoring", help="\n\n".join(SCORINGS.get(m, m) for m in modes))
    own = sorted({r["summary"].get("scoring") or "?" for r in done})
    if own != [mode]:
        st.caption(f"Accuracies and answers under `{mode}` scoring; the runs' own scoring is "
                   f"{', '.join(f'`{o}`' for o in own)}. Constant-answer checks for `{mode}` are made from the "
                   f"stored answers of that mode (a run's own flag is for its own scoring).")
    return mode


def collapse_notes(rows: list[dict], scoring: str | None) -> dict[int, str]:
    """Run id → why it is not distinguishable from a constant answer, under `scoring`: the run's own
    flag where `scoring` is its primary scoring (or None), else checked on that mode's answers."""
    done = [r for r in rows if r["status"] == "succeeded"]
    own = [r for r in done if scoring is None or r["summary"].get("scoring") == scoring]
    notes = tables.collapse_notes(own)
    others = tuple(r["id"] for r in done if r not in own)
    if others:
        for run_id, found in queries.mode_diagnostics(others, scoring).items():
            note = collapse_note(found)
            if note:
                notes[run_id] = note
    return notes


def mark_collapsed(arms: list[dict], notes: dict[int, str]) -> list[dict]:
    """The arms with each seed's collapse flag taken from `notes` (the flags of the chosen scoring)."""
    return [{**a, "collapsed": [r in notes for r in a["runs"]]} for a in arms]


def no_results(rows: list[dict], name: str = "") -> None:
    """What to do next when there are no bars to draw: launch, choose runs, or wait for them."""
    if not rows and name.startswith("runs-"):
        empty_state("Choose finished runs above to compare them (or compare an experiment's arms).")
        return
    if not rows and name:
        empty_state(f"Experiment {name!r} has no runs: launch it again from the Launch screen.",
                    page="screens/launch.py", label="Launch it again")
        return
    if not rows:
        empty_state("Nothing to compare yet: launch an experiment, or choose finished runs.",
                    page="screens/launch.py", label="Launch an experiment")
        return
    waiting = sum(r["status"] in ("queued", "running") for r in rows)
    empty_state(f"None of these {len(rows)} run(s) has finished yet ({waiting} queued or running): "
                f"the bars appear as soon as one succeeds.", page="screens/runs.py", label="Watch the runs")


def accuracy_bars(arms: list[dict], notes: dict[int, str]) -> None:
    st.plotly_chart(charts.accuracy_bars(arms, notes), key="accuracy_bars")
    st.caption("Bars: mean test accuracy over seeds, with a 95% t-interval over the seeds' accuracies "
               "(seed-to-seed spread only, none with one seed; the paired comparison below also counts "
               "item sampling); dots: one per seed (a cross marks a run that answers a constant label).")
    collapsed = [(a, r) for a in arms for r, c in zip(a["runs"], a.get("collapsed") or []) if c]
    if collapsed:
        hit = ", ".join(sorted({a["arm"] for a, _ in collapsed}))
        st.warning(f"⚠ {len(collapsed)} run(s) flagged (arms {hit}): not distinguishable from a constant "
                   f"answer, below the majority baseline, or mostly unparsed; their accuracy says little "
                   f"about what they learned.")
        with st.expander("Why, run by run"):
            st.markdown("\n".join(f"- run #{r} ({a['arm']}, {a['dataset']}, {a['student']}): "
                                   f"{notes.get(r, 'not distinguishable from a constant answer')}"
                                   for a, r in collapsed))


def numbers(arms: list[dict], notes: dict[int, str], name: str) -> None:
    frame = tables.compare_frame(arms, notes)
    tables.show(frame, key="compare_table",
                column_config={c: st.column_config.NumberColumn(format="%.3f") for c in ("mean", "low", "high")})
    st.download_button("Download as CSV", frame.to_csv(index=False).encode("utf-8"),
                       file_name=f"{name or 'comparison'}-accuracy.csv", mime="text/csv", key="download_csv")


def report_download(rows: list[dict], arms: list[dict], scoring: str | None) -> None:
    """A zip of the experiment's report (HTML, LaTeX and Markdown tables, CSV, SVG figures), made when
    the button is clicked; only for a whole experiment, whose design the report states."""
    if st.session_state.get("compare_source") != "an experiment" or not rows:
        return
    name = rows[0]["experiment"]                 # every cell is listed under the experiment's name
    labels = list(dict.fromkeys(a["arm"] for a in arms))
    reference = st.selectbox("Report: reference arm", labels, key="report_reference",
                             index=labels.index("none/none") if "none/none" in labels else 0,
                             help="Every other arm is compared with it, item by item (Holm-corrected).")
    st.download_button("Download report", lambda: queries.report_zip(name, reference, scoring),
                       file_name=f"report-{name}.zip", mime="application/zip", key="download_report",
                       on_click="ignore", icon=":material/download:")
    st.caption("report.html (opens offline), table.tex (booktabs), table.md, results.csv and figures/*.svg: "
               "the numbers of this page, with the design, versions, data warnings, flags and flip analysis.")


X_AXES = {"steps": "step", "epochs": "epoch", "training tokens": "tokens"}


def curves(rows: list[dict]) -> None:
    """Label loss and validation accuracy per arm (mean over seeds, min–max band) against steps,
    epochs or training tokens; the total and rationale loss run by run below them."""
    finished = [r for r in rows if r["status"] in ("succeeded", "running")]
    ids = tuple(r["id"] for r in finished)
    choice = st.radio("x-axis", list(X_AXES), horizontal=True, key="curve_x",
                      help="Training tokens: real (non-padding) tokens seen, prompt included; an `after` or "
                           "`before` run sees more tokens per step than a label-only one.")
    x = X_AXES[choice]
    untouched = sum((r.get("summary") or {}).get("fine_tuned") is False for r in finished)
    if untouched:
        st.caption(f"{untouched} run(s) of the untouched student (train.steps 0) trained nothing: no curve.")
    groups = {r["id"]: f"{r['dataset']} · {r['student']} · {r['arm']}" for r in finished}
    label_loss = queries.curves(ids, "label_loss", x)
    if label_loss:
        st.plotly_chart(charts.arm_curves(label_loss, groups, x, "label loss (per label token)"),
                        key="curve_label_loss")
        st.caption("Label loss: cross-entropy of the label tokens alone, the same tokens for every placement, "
                   "so the arms compare. Line: mean over seeds; band: lowest to highest seed.")
    else:
        st.caption("No label-loss curve recorded for these runs (runs made before it was logged, or none "
                   "has logged a step yet).")
    val = queries.curves(ids, "val_accuracy", x)
    if val:
        st.plotly_chart(charts.arm_curves(val, groups, x, "validation accuracy", y_range=[0, 1.05]),
                        key="curve_val_accuracy")
        st.caption("Validation accuracy: a fixed sample of the test items (eval.val_size, the same for every "
                   "arm and seed), scored by each run's own evaluation protocol every eval.every steps.")
    else:
        st.caption("No validation accuracy recorded: launch with *Validation every N steps* above 0 "
                   "(eval.every) to follow accuracy during training.")
    with st.expander("Total and rationale loss, run by run (the total is not comparable across placements)"):
        points = queries.curves(ids, "loss", x)
        if not points:
            st.caption("No training curve recorded yet.")
            return
        labels = {r["id"]: f"{r['arm']} · seed {r['seed']} (#{r['id']})" for r in finished}
        st.plotly_chart(charts.loss_curves(points, labels, groups, x, "total training loss"), key="loss_curves")
        rationale = queries.curves(ids, "rationale_loss", x)
        if rationale:
            st.plotly_chart(charts.loss_curves(rationale, labels, groups, x, "rationale loss (per rationale token)"),
                            key="curve_rationale_loss")


def paired(arms: list[dict], scoring: str | None = None) -> None:
    """Arm A against arm B on the same test items: difference, McNemar, and the examples that differ."""
    if len(arms) < 2:
        empty_state("A paired comparison needs two arms with finished runs: launch another arm (on Launch, "
                    "start from this experiment and add a placement or a perturbation), or wait for one to finish.")
        return
    names = {a["arm_key"]: f"{a['dataset']} · {a['student']} · {a['arm']}" for a in arms}
    keys = list(names)
    # Default: the rationale as it is (perturbation none) against label-only, the study's first question.
    base = next((x["arm_key"] for x in arms if x["placement"] == "none"), keys[0])
    first = next((x["arm_key"] for x in arms if x["arm_key"] != base and x["perturbation"] == "none"),
                 next(k for k in keys if k != base))
    left, right = st.columns(2)
    a = left.selectbox("Arm A", keys, format_func=names.get, key="arm_a", index=keys.index(first))
    b = right.selectbox("Arm B", keys, format_func=names.get, key="arm_b", index=keys.index(base))
    if a == b:
        st.caption("Choose two different arms.")
        return
    arm_a, arm_b = (next(x for x in arms if x["arm_key"] == k) for k in (a, b))
    try:
        result = queries.paired(tuple(arm_a["runs"]), tuple(arm_b["runs"]), scoring)
    except ValueError as e:
        st.error(str(e))
        return
    _paired_result(result, arm_a, arm_b)


ALPHA = 0.05


def significance_sentence(diff: float, p_value: float, alpha: float = ALPHA) -> str:
    """What the paired test says, in words (two-sided, at `alpha`)."""
    if p_value < alpha:
        return (f"**Significant** at α = {alpha} (paired p = {p_value:.3g}): A is "
                f"{'more' if diff > 0 else 'less'} accurate than B on these items.")
    return (f"**Not significant** at α = {alpha} (paired p = {p_value:.3g}): these runs show no "
            f"difference between A and B.")


def _paired_result(result: dict, arm_a: dict, arm_b: dict) -> None:
    warning = (result.get("basis") or {}).get("warning")
    cols = st.columns(4)
    cols[0].metric("A − B accuracy", f"{result['diff']:+.3f}", help="mean over seed pairs")
    cols[1].metric("95% interval", ("⚠ " if warning else "") + f"[{result['low']:+.3f}, {result['high']:+.3f}]",
                   help="Not evidence of no difference here: see the warning below." if warning else None)
    cols[2].metric("paired p", f"{result['p_value']:.3g}")
    cols[3].metric("items (seed pairs)", f"{result['n_items']} ({len(result['pairs'])})")
    st.markdown(significance_sentence(result["diff"], result["p_value"]))
    if warning:
        st.error(f"⚠ Both arms answer a constant label, so this interval measures the label bias, not the "
                 f"arms: {warning}", icon=":material/warning:")
    if result.get("interval_method"):
        st.caption(f"Difference: mean over seed pairs (runs paired by seed). Interval: "
                   f"{result['interval_method']}. p: {result['test_method']}.")
    unmatched = result.get("unmatched_seeds") or {}
    if unmatched.get("a") or unmatched.get("b"):
        st.caption(f"Left out, no run with the same seed in the other arm: seeds {unmatched.get('a') or []} "
                   f"of A, {unmatched.get('b') or []} of B.")
    st.caption(f"Over all seed pairs: A right and B wrong {result['a_only']} time(s); "
               f"B right and A wrong {result['b_only']}.")
    if result.get("per_pair"):
        tables.show(pd.DataFrame([{"seed": p["seed"], "A − B": round(p["diff"], 4), "A only": p["a_only"],
                                   "B only": p["b_only"], "McNemar p": float(f"{p['p_value']:.3g}")}
                                  for p in result["per_pair"]],
                                 columns=["seed", "A − B", "A only", "B only", "McNemar p"]), key="per_pair")
    examples = result["examples"]
    if not examples:
        st.caption("The two arms agree on every item.")
        return
    fixes = [e for e in examples if e["fixes"]]
    breaks = [e for e in examples if e["breaks"]]
    left, right = st.columns(2)
    with left:
        st.markdown(f"**A fixes** ({arm_a['arm']} right, {arm_b['arm']} wrong): {len(fixes)} example(s)")
        tables.show(_example_frame(fixes), key="fixes")
    with right:
        st.markdown(f"**A breaks** ({arm_a['arm']} wrong, {arm_b['arm']} right): {len(breaks)} example(s)")
        tables.show(_example_frame(breaks), key="breaks")


def _example_frame(examples: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"example": e["example_id"], "fixes": e["fixes"], "breaks": e["breaks"],
                          "pairs": e["pairs"], "consistent across seeds": "yes" if e["consistent"] else "no"}
                         for e in examples], columns=["example", "fixes", "breaks", "pairs", "consistent across seeds"])
