"""The Examples page's sections: which runs, which examples (filters), the overview table, and one
example in full: question, choices, gold label, the teacher's rationale, each run's prediction, and the
rationale as each run's condition turns it into a training sequence.
"""

from __future__ import annotations

import html
import json

import streamlit as st

from app import queries, tables
from app.components import empty_state, experiment_picker, run_label, text_block, training_sequence
from app.safe import code, md

MAX_RUNS_DEFAULT = 8
"""At most this many runs are chosen at first: one per arm."""
MAX_PREVIEW_POSITION = 200      # the preview builds the first n examples: keep n reasonable
MAX_LISTED = 500


def pick_runs() -> list[dict]:
    """Finished runs of one experiment, with their full config."""
    experiment = experiment_picker(key="examples_experiment")
    if experiment is None:
        empty_state("No experiments yet: launch one, and read its test examples here once runs finish.",
                    page="screens/launch.py", label="Launch an experiment")
        return []
    done = {r["id"]: r for r in queries.runs(experiment["id"]) if r["status"] == "succeeded"}
    if not done:
        empty_state(f"No run of {experiment['name']!r} has finished yet.", page="screens/runs.py",
                    label="Watch the runs")
        return []
    chosen = st.multiselect("Runs", list(done), default=one_per_arm(list(done.values()))[:MAX_RUNS_DEFAULT],
                            format_func=lambda i: run_label(done[i]), key="examples_runs",
                            help="At first one run per arm (its first seed), so that the arms' answers sit side by side.")
    return [{**done[i], "config": queries.run_detail(i)["config"]} for i in chosen]


def one_per_arm(runs: list[dict]) -> list[int]:
    """The id of each arm's run with the lowest seed (the lowest id among equal seeds), arms in the order
    their first run is listed."""
    first: dict[str, dict] = {}
    for r in runs:
        best = first.get(r["arm_key"])
        if best is None or (r["seed"], r["id"]) < (best["seed"], best["id"]):
            first[r["arm_key"]] = r
    return [r["id"] for r in first.values()]


def test_data(runs: list[dict]) -> dict | None:
    """The test set the runs were evaluated on (choose one when they differ)."""
    sets: dict[str, dict] = {}
    for r in runs:
        data = r["config"]["data"]
        key = json.dumps({"name": data["name"], "split": data["test_split"], "options": data["options"]}, sort_keys=True)
        sets.setdefault(key, {"name": data["name"], "split": data["test_split"], "options": data["options"], "runs": []})
        sets[key]["runs"].append(r)
    if not sets:
        return None
    keys = list(sets)
    if len(keys) > 1:
        key = st.selectbox("Test set", keys, key="examples_dataset",
                           format_func=lambda k: f"{sets[k]['name']} ({sets[k]['split']}) {sets[k]['options'] or ''}")
        return sets[key]
    return sets[keys[0]]


def filters(runs: list[dict]) -> dict:
    """Search text, teacher correctness, and outcome across runs (two runs for a disagreement)."""
    cols = st.columns([2, 1, 1])
    search = cols[0].text_input("Search question and rationale", key="examples_search")
    teacher = cols[1].selectbox("Teacher", tables.TEACHER, key="examples_teacher")
    outcome = cols[2].selectbox("Outcome", tables.OUTCOMES, key="examples_outcome")
    pair = None
    if outcome == "the two runs disagree":
        ids = [r["id"] for r in runs]
        names = {r["id"]: run_label(r) for r in runs}
        if len(ids) < 2:
            st.caption("Choose at least two runs to find their disagreements.")
        else:
            left, right = st.columns(2)
            pair = (left.selectbox("Run A", ids, format_func=names.get, key="disagree_a"),
                    right.selectbox("Run B", ids, index=1, format_func=names.get, key="disagree_b"))
    return {"search": search, "teacher": teacher, "outcome": outcome, "pair": pair}


def matching(data: dict, runs: list[dict], chosen: dict) -> tuple[list[dict], dict, list[dict]]:
    """(the evaluated examples in test order, predictions by run, those passing the filters)."""
    preds = tables.by_run(queries.predictions(tuple(r["id"] for r in runs)))
    evaluated = max((len(p) for p in preds.values()), default=0)
    ordered = queries.dataset_examples(data["name"], data["split"], data["options"], None, limit=max(evaluated, 1))
    found = queries.dataset_examples(data["name"], data["split"], data["options"], chosen["search"], limit=max(evaluated, 1))
    known = {ex["id"] for ex in ordered}
    kept = [ex for ex in found if ex["id"] in known and tables.keep_example(
        ex, preds, outcome=chosen["outcome"], teacher=chosen["teacher"], pair=chosen["pair"])]
    return ordered, preds, kept


def overview(kept: list[dict], total: int, preds: dict, runs: list[dict]) -> None:
    st.markdown(f"**{len(kept)} of {int(total)} evaluated example(s)** match.")
    names = {r["id"]: f"#{r['id']} {r['arm']} s{r['seed']}" for r in runs}
    tables.show(tables.examples_frame(kept[:MAX_LISTED], preds, names), key="examples_table")


def example_detail(example: dict, position: int, runs: list[dict], preds: dict) -> None:
    """One example in full, with each run's prediction side by side."""
    st.markdown(f"#### {md(example['id'])}")
    text_block(example["question"])
    if example.get("choices"):
        st.html(_choices_html(example))
    st.markdown(f"**Gold label:** {code(example['label'])}")
    teacher = {True: "right", False: "wrong"}.get(example.get("teacher_correct"), "unknown")
    st.markdown(f"**Teacher's rationale** (teacher answered {code(example.get('teacher_label') or '—')}: {teacher})")  # text: right/wrong
    text_block(example.get("rationale"), muted=True)
    st.markdown("**Predictions**")
    for start in range(0, len(runs), 4):
        for col, run in zip(st.columns(4), runs[start:start + 4]):
            with col:
                _prediction(run, preds.get(run["id"], {}).get(example["id"]))
    st.markdown("**The rationale as each run's condition trains on it**")
    as_trained(example, position, runs)


def _choices_html(example: dict) -> str:
    items = []
    for i, choice in enumerate(example["choices"]):
        letter = "abcdefghijklmnopqrstuvwxyz"[i] if example.get("kind") == "multiple_choice" else choice
        gold = letter == example["label"]
        text = f"({letter}) {html.escape(str(choice))}" if letter != choice else html.escape(str(choice))
        items.append(f"<li>{'<b>' + text + ' ✓ gold</b>' if gold else text}</li>")
    return f"<ul style='margin: 0'>{''.join(items)}</ul>"


def _prediction(run: dict, pred: dict | None) -> None:
    st.markdown(f"**#{int(run['id'])}** {md(run['arm'])} · seed {int(run['seed'])}")
    if pred is None:
        st.caption("not evaluated on this example")
        return
    mark = ":green[**right**]" if pred["correct"] else ":red[**wrong**]"
    st.markdown(f"{mark}: answered {code(pred['predicted'])}")  # text: mark is ✓ or ✗
    if pred.get("generated"):
        text_block(pred["generated"], muted=True)
    if pred.get("scores"):
        tables.show({"label": list(pred["scores"]), "score": [round(v, 3) for v in pred["scores"].values()]},
                    key=f"scores_{run['id']}")


def as_trained(example: dict, position: int, runs: list[dict]) -> None:
    """The training sequence this example would make under each run's config (placement,
    perturbation, seed), built by a worker; supervised tokens shaded."""
    if position >= MAX_PREVIEW_POSITION:
        st.caption(f"The preview covers the first {MAX_PREVIEW_POSITION} test examples; this one is number "  # text: numbers
                   f"{position + 1}.")
        return
    if not st.toggle("Show (computed by a worker)", key="examples_preview"):
        return
    rows = {}
    for config, group in _by_config(runs):
        conditions = [{"placement": r["config"]["placement"], "perturbation": r["config"]["perturbation"],
                       "label": r["id"]} for r in group]
        try:
            found = queries.preview(config, conditions, n=position + 1, split=config["data"]["test_split"])
        except TimeoutError as e:
            st.error(f"The preview timed out: {md(e)}")
            return
        except Exception as e:              # the worker's error, shown as it is
            st.error(f"The worker could not build the preview: {md(e)}")
            return
        rows.update({row["label"]: row for row in found if row["example_id"] == example["id"]})
    for r in runs:
        if r["id"] in rows:
            training_sequence(rows[r["id"]], title=f"#{r['id']} · {r['arm']} · seed {r['seed']}")


def _by_config(runs: list[dict]) -> list[tuple[dict, list[dict]]]:
    """Runs that differ only in placement and perturbation share one preview call."""
    groups: dict[str, tuple[dict, list[dict]]] = {}
    for r in runs:
        rest = {k: v for k, v in r["config"].items() if k not in ("placement", "perturbation", "name")}
        key = json.dumps(rest, sort_keys=True, default=str)
        groups.setdefault(key, (r["config"], []))[1].append(r)
    return list(groups.values())
