"""The Compare page's sections: which runs, the accuracy bars, the numbers (and their CSV), the
training curves, and the paired comparison of two arms.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from collections import Counter

from app import charts, queries, tables
from app.components import collapse_note, empty_state, experiment_picker, run_label
from app.safe import md

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
    done = [r for r in rows if r["status"] == "succeeded" and r.get("eval_mode") != "generate"]
    computed = [set(r["summary"].get("accuracy_by_mode") or {}) for r in done]
    common = set.intersection(*computed) if computed else set()
    if not common:
        return None
    generated = sorted({r["arm"] for r in rows if r["status"] == "succeeded" and r.get("eval_mode") == "generate"})
    modes = sorted(common, key=lambda m: (list(SCORINGS).index(m) if m in SCORINGS else len(SCORINGS), m))
    primary = Counter(r["summary"].get("scoring") for r in done).most_common(1)[0][0]
    mode = st.radio("Scoring", modes, index=modes.index(primary) if primary in modes else 0, horizontal=True,
                    key="compare_scoring", help="\n\n".join(SCORINGS.get(m, m) for m in modes))
    own = sorted({r["summary"].get("scoring") or "?" for r in done})
    if own != [mode]:
        st.caption(f"Accuracies and answers under `{mode}` scoring; the runs' own scoring is "  # text: scoring modes
                   f"{', '.join(f'`{o}`' for o in own)}. Constant-answer checks for `{mode}` are made from the "
                   f"stored answers of that mode (a run's own flag is for its own scoring).")
    if generated:
        st.caption(f"Arms evaluated by generation ({md(', '.join(generated))}) keep their generated accuracy under every "
                   f"scoring, and stay in every comparison: scoring modes do not apply to them.")
    return mode


def collapse_notes(rows: list[dict], scoring: str | None) -> dict[int, str]:
    """Run id → why it is not distinguishable from a constant answer, under `scoring`: the run's own
    flag where `scoring` is its primary scoring (or None), else checked on that mode's answers."""
    done = [r for r in rows if r["status"] == "succeeded"]
    own = [r for r in done if scoring is None or r["summary"].get("scoring") == scoring
           or r.get("eval_mode") == "generate"]               # generated answers have no scoring modes
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
        st.warning(f"⚠ {len(collapsed)} run(s) flagged (arms {md(hit)}): not distinguishable from a constant "
                   f"answer, below the majority baseline, or mostly unparsed; their accuracy says little "
                   f"about what they learned.")
        with st.expander("Why, run by run"):
            st.markdown("\n".join(f"- run #{int(r)} ({md(a['arm'])}, {md(a['dataset'])}, {md(a['student'])}): "
                                   f"{md(notes.get(r, 'not distinguishable from a constant answer'))}"
                                   for a, r in collapsed))


def numbers(arms: list[dict], notes: dict[int, str], name: str) -> None:
    frame = tables.compare_frame(arms, notes)
    tables.show(frame, key="compare_table",
                column_config={c: st.column_config.NumberColumn(format="%.3f") for c in ("mean", "low", "high")})
    st.download_button("Download as CSV", frame.to_csv(index=False).encode("utf-8"),
                       file_name="comparison-accuracy.csv", mime="text/csv", key="download_csv")


def reference_picker(arms: list[dict]) -> str:
    """The reference arm every other arm is compared with (its row key): the label-only arm when there
    is exactly one, else the first arm."""
    choices = queries.reference_choices(arms)
    keys = list(choices)
    return st.selectbox("Reference arm", keys, index=keys.index(queries.default_reference(arms)),
                        format_func=choices.get, key="reference_arm",
                        help="Every other arm is compared with it, in its panel (dataset, student); "
                             "Holm-corrected over the comparisons below.")


VERDICT_COLUMNS = ["dataset", "student", "arm", "evaluated", "seeds", "Δ vs ref.", "95% interval (seeds)", "p (seeds)",
                   "Holm p", "verdict", "detectable at 80% power", "test-set interval", "test-set p", "warning"]


def verdict_frame(found: dict) -> pd.DataFrame:
    """One line per arm compared with the reference: the procedure (seeds as the unit) first, then the
    test set (these trained models, on these items)."""
    lines = []
    for r in found["rows"]:
        if r.get("is_reference") or r.get("diff") is None:
            continue
        interval = (f"[{r['diff_low']:+.3f}, {r['diff_high']:+.3f}]" if r.get("diff_low") is not None else "")
        warn = [f"{len(r['flagged_runs'])} flagged seed(s)"] if r.get("flagged_runs") else []
        if r.get("basis_warning"):
            warn.append("both arms answer a constant label: the interval measures the label bias")
        if r.get("note"):
            warn.append(r["note"])
        lines.append({"dataset": r["dataset"], "student": r["student"], "arm": r["arm"], "evaluated": r["protocol"],
                      "seeds": r["seed_pairs"], "Δ vs ref.": round(r["diff"], 4), "95% interval (seeds)": interval,
                      "p (seeds)": _p(r["p_value"]), "Holm p": _p(r["p_holm"]), "verdict": r["verdict"],
                      "detectable at 80% power": "" if r.get("detectable") is None else f"±{r['detectable']:.3f}",
                      "test-set interval": f"[{r['test_low']:+.3f}, {r['test_high']:+.3f}]",
                      "test-set p": _p(r["test_p"]), "warning": "; ".join(warn)})
    return pd.DataFrame(lines, columns=VERDICT_COLUMNS)


def _p(p: float | None) -> str:
    return "" if p is None else "<0.001" if p < 0.001 else f"{p:.3g}"


def verdicts(rows: list[dict], arms: list[dict], scoring: str | None) -> str | None:
    """Every arm against a reference arm, the verdicts the report prints. Returns the reference's row
    key (None with a single arm)."""
    if len({a["row_key"] for a in arms}) < 2:
        st.caption("One arm: nothing to compare it with yet.")
        return None
    reference = reference_picker(arms)
    try:
        found = queries.versus_reference(tuple(r["id"] for r in rows), reference, scoring)
    except ValueError as e:
        st.error(md(e))
        return None
    tables.show(verdict_frame(found), key="verdicts")
    st.caption(f"Δ vs ref.: the training procedures, seeds as the unit: mean over seed pairs of the accuracy "  # text: numbers
               f"difference, 95% t-interval and paired t-test over the per-pair differences, Holm-corrected over "
               f"the {found['family']} comparison(s) with a p-value; one seed pair gives no interval and no p "
               f"(“needs ≥ 2 seeds”). Detectable: the smallest true difference these seeds find with 80% "
               f"probability. Test set: these trained models on these items (item-cluster bootstrap and "
               f"sign-flip test over items): it says nothing about a rerun with new seeds.")
    return found["reference_key"]


def report_download(rows: list[dict], reference: str | None, scoring: str | None) -> None:
    """A zip of the experiment's report (HTML, LaTeX and Markdown tables, CSV, PDF and SVG figures), made
    when the button is clicked, against the reference chosen above; only for a whole experiment, whose
    design the report states."""
    if st.session_state.get("compare_source") != "an experiment" or not rows:
        return
    name = rows[0]["experiment"]                 # every cell is listed under the experiment's name
    st.download_button("Download report", lambda: queries.report_zip(name, reference, scoring),
                       file_name=f"report-experiment-{int(rows[0]['experiment_id'])}.zip", mime="application/zip",
                       key="download_report",
                       on_click="ignore", icon=":material/download:")
    st.caption("report.html (opens offline), table.tex (booktabs), table.md, results.csv and figures/*.pdf, *.svg: "
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
        st.caption(f"{untouched} run(s) of the untouched student (train.steps 0) trained nothing: no curve.")  # text: a count
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
    """Arm A against arm B: the procedures (seeds as the unit) with the seed budget, then the test set
    (these models on these items: cluster bootstrap, sign flip, McNemar per seed pair) and the examples
    that differ."""
    if len(arms) < 2:
        empty_state("A paired comparison needs two arms with finished runs: launch another arm (on Launch, "
                    "start from this experiment and add a placement or a perturbation), or wait for one to finish.")
        return
    names = {a["arm_key"]: f"{a['dataset']} · {a['student']} · {a['arm']}" for a in arms}
    keys = list(names)
    # Default: the rationale as it is (perturbation none) against label-only, the study's first question.
    base = next((x["arm_key"] for x in arms if x["placement"] == "none" and not x.get("untouched")), keys[0])
    first = next((x["arm_key"] for x in arms if x["arm_key"] != base and x["perturbation"] == "none"
                  and not x.get("untouched")), next(k for k in keys if k != base))
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
        st.error(md(e))
        return
    _paired_result(result, arm_a, arm_b)


ALPHA = 0.05


def significance_sentence(result: dict, alpha: float = ALPHA) -> str:
    """What the procedure-level test says, in words (two-sided, at `alpha`)."""
    diff, p_value, k = result["diff"], result["p_value"], len(result["pairs"])
    if p_value is None:
        return (f"**Needs ≥ 2 seeds**: with one seed pair the seed-to-seed variance is unknown, so nothing can be "
                f"said about the training procedures; the test-set statistics below are about these two trained "
                f"models only. Run the arms on more seeds.")
    if p_value < alpha:
        return (f"**Significant** at α = {alpha} (paired t over {k} seed pairs, p = {p_value:.3g}): A's procedure is "
                f"{'more' if diff > 0 else 'less'} accurate than B's on these items.")
    return (f"**Not significant** at α = {alpha} (paired t over {k} seed pairs, p = {p_value:.3g}): these seeds show no "
            f"difference between the procedures.")


def _paired_result(result: dict, arm_a: dict, arm_b: dict) -> None:
    warning = (result.get("basis") or {}).get("warning")
    has_interval = result["low"] is not None
    cols = st.columns(4)
    cols[0].metric("A − B accuracy", f"{result['diff']:+.3f}", help="mean over seed pairs of the accuracy difference")
    cols[1].metric("95% interval over seeds", ("⚠ " if warning else "")
                   + (f"[{result['low']:+.3f}, {result['high']:+.3f}]" if has_interval else "needs ≥ 2 seeds"),
                   help="Not evidence of no difference here: see the warning below." if warning else
                   "Student-t interval over the per-seed-pair differences")
    cols[2].metric("p over seeds", f"{result['p_value']:.3g}" if has_interval else "–",
                   help="paired t-test over the seed pairs' accuracy differences")
    cols[3].metric("seed pairs", str(len(result["pairs"])))
    st.markdown(significance_sentence(result))          # text: numbers and the API's own words
    if warning:
        st.error(f"⚠ Both arms answer a constant label, so the intervals measure the label bias, not the "
                 f"arms: {md(warning)}", icon=":material/warning:")
    notes = [a["note"] for a in (arm_a, arm_b) if a.get("note")]
    if notes:
        st.caption(" · ".join(f"{md(a['arm'])}: {md(a['note'])}" for a in (arm_a, arm_b) if a.get("note")))
    seed_budget(result)
    unmatched = result.get("unmatched_seeds") or {}
    if unmatched.get("a") or unmatched.get("b"):
        st.caption(f"Left out, no run with the same seed in the other arm: seeds {unmatched.get('a') or []} "  # text: seeds
                   f"of A, {unmatched.get('b') or []} of B.")
    test = result["test_set"]
    st.markdown("**Test set: these trained models, on these items** (says nothing about a rerun with new seeds)")
    cols = st.columns(3)
    cols[0].metric("test-set interval", f"[{test['low']:+.3f}, {test['high']:+.3f}]")
    cols[1].metric("test-set p", f"{test['p_value']:.3g}")
    cols[2].metric("items (seed pairs)", f"{result['n_items']} ({len(result['pairs'])})")
    st.caption(f"Interval: {test['interval_method']}. p: {test['test_method']}. Over all seed pairs: A right and "  # text: API
               f"B wrong {result['a_only']} time(s); B right and A wrong {result['b_only']}.")
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
        st.markdown(f"**A fixes** ({md(arm_a['arm'])} right, {md(arm_b['arm'])} wrong): {len(fixes)} example(s)")
        tables.show(_example_frame(fixes), key="fixes")
    with right:
        st.markdown(f"**A breaks** ({md(arm_a['arm'])} wrong, {md(arm_b['arm'])} right): {len(breaks)} example(s)")
        tables.show(_example_frame(breaks), key="breaks")


def seed_budget(result: dict) -> None:
    """What these seeds can detect, and how many seed pairs a difference needs (80% power, α = 0.05),
    from the spread of the per-pair differences."""
    per_pair = tuple(p["diff"] for p in result["per_pair"])
    k = len(per_pair)
    target = st.number_input("Difference to plan for", min_value=0.0, max_value=1.0, step=0.01, format="%.3f",
                             value=round(abs(result["diff"]), 3), key="budget_target",
                             help="An accuracy difference between the procedures; default: the observed one.")
    budget = queries.seed_budget(per_pair, float(target))
    floor = (f"With {k} seed pair(s) a distribution-free test over seed pairs (sign flip) cannot go below "
             f"p = {budget['sign_flip_floor']:.3g}.")
    if budget["detectable"] is None:
        st.caption(f"Seed budget: no seed-to-seed spread to plan with ({k} seed pair(s)"  # text: numbers
                   f"{'' if k < 2 else ', all with the same difference'}). {floor}")
        return
    need = (f"a difference of {target:.3f} needs **{budget['seeds_for_target']}** seed pairs" if budget["seeds_for_target"]
            else f"a difference of {target:.3f} needs more than 200 seed pairs" if target > 0 else "")
    st.caption(f"Seed budget (paired t, 80% power, α = 0.05, seed-pair sd {budget['sd']:.3f}): these {k} seed pairs "  # text: numbers
               f"detect a true difference of ±{budget['detectable']:.3f}; {need}. {floor}")


def _example_frame(examples: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"example": e["example_id"], "fixes": e["fixes"], "breaks": e["breaks"],
                          "pairs": e["pairs"], "consistent across seeds": "yes" if e["consistent"] else "no"}
                         for e in examples], columns=["example", "fixes", "breaks", "pairs", "consistent across seeds"])
