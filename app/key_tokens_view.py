"""The Key tokens screen's sections: computing attributions (scoring model, data, method), the
attribution jobs, one attribution read example by example, the most frequent key tokens, the
one-click key-token study, and a study's accuracy against k.

Each form section draws its widgets and returns plain values for api.submit_attribution (None when an
entry is missing or wrong, with the problem shown next to it).
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st
import yaml

from app import charts, compare_view, forms, jobs_view, launch_view, queries, tables
from app import matrix as mx
from app.components import empty_state, loader_options, run_label, text_block, token_heatmap
from app.safe import code, md
from worker import api

METHODS = {"ig": "integrated gradients", "grad_x_input": "gradient × input", "occlusion": "occlusion"}
METHODS_HELP = ("Integrated gradients: the scores sum to the change of log p(label) from the baseline, and that "
                "completeness is checked per example. Gradient × input: one backward pass; its sign is unreliable "
                "in normalised transformers. Occlusion: each token replaced by the baseline in turn (exact, one "
                "pass per token).")
BASELINES = {"zero": "zero embedding", "pad": "the pad token's embedding"}
SOURCES = {"run": "a finished `before` run", "student": "an untrained student", "model": "a model id or path"}
DEFAULT_DATASET = "synthetic-keyfacts"          # the built-in study task: its key words are known
JOB_PICKER = "attribution_job"
STUDY_PICKER = "k_experiment"
MESSAGE = "key_tokens_message"
DROPPED_FROM_BASE = ("name", "placement", "perturbation", "seed")
SCORE_ALL_UP_TO = 3000
"""The attribution scores every example of a split this small by default (a study needs a score for each
training example); larger splits start at 200."""
FORMATS = {"examples/s": "%.1f", "completeness error (mean)": "%.2e", "key word first": "%.2f"}     # of the jobs table's columns


# ------------------------------------------------------------------------------------------ compute

def source_section() -> tuple[dict | None, dict | None]:
    """The scoring model → (the job's `source`, the run config the data defaults come from)."""
    kind = st.radio("Scoring model", list(SOURCES), format_func=SOURCES.get, horizontal=True, key="attr_source",
                    help="A model trained with the rationale before the label draws the label from it: its "
                         "scores say which rationale words carry the answer.")
    if kind == "run":
        runs = {r["id"]: r for r in queries.runs(None) if r["status"] == "succeeded" and r["placement"] == "before"}
        if not runs:
            empty_state("No finished run with placement `before` yet: launch one (placement before) to score "
                        "with the model that learned to read the rationale, or use an untrained student or a "
                        "model. `synthetic-keyfacts` is the built-in task whose key words are known: a `before` "
                        "run on it with the Launch defaults learns to read them.",
                        page="screens/launch.py", label="Launch an experiment")
            return None, None
        run_id = st.selectbox("Run", list(runs), format_func=lambda i: run_label(runs[i]), key="attr_run")
        return {"run_id": run_id}, queries.run_detail(run_id)["config"]
    if kind == "student":
        options = queries.launch_options()
        choices = [f"tiny:{s}" for s in options["tiny_sizes"]] + options["pretrained"]
        choice = st.selectbox("Student", choices, key="attr_student")
        defaults = options["defaults"]["student"]
        st.caption("An untrained student's scores are a baseline: what the architecture and tokenizer alone "
                   "make of the rationale.")
        student = mx.student_entries([choice], vocab_size=defaults["vocab_size"], max_length=defaults["max_length"])[0]
        return {"student": student}, None
    model = st.text_input("Model id or local path", key="attr_model", placeholder="HuggingFaceTB/SmolLM2-135M").strip()
    if not model:
        st.caption("Give a Hugging Face model id or a local folder.")
        return None, None
    return {"model": model}, None


def data_section(infos: list[dict], config: dict | None, scope: str,
                 sets: list[dict] | None = None) -> dict | None:
    """Dataset (or a registered rationale set), options, splits and n → the job's `data`; defaults
    from the source run's config."""
    run_data = (config or {}).get("data") or {}
    names = [i["name"] for i in infos if not i["error"] and i["name"] != "rationale-set"]
    by_label = {f"rationale set: {s['name']} (#{s['id']})": s for s in sets or []}
    names += list(by_label)
    run_set = next((label for label, s in by_label.items() if run_data.get("name") == "rationale-set"
                    and (run_data.get("options") or {}).get("path") in (s["path"], s["name"])), None)
    if run_data.get("name") and run_data["name"] not in names and run_set is None:
        names.append(run_data["name"])
    default = run_set or run_data.get("name") or (DEFAULT_DATASET if DEFAULT_DATASET in names else names[0])
    cols = st.columns([2, 2, 1])
    choice = cols[0].selectbox("Dataset", names, index=names.index(default), key=f"attr_dataset_{scope}")
    chosen_set = by_label.get(choice)
    name = "rationale-set" if chosen_set else choice
    same = (choice == run_set) or (chosen_set is None and name == run_data.get("name"))
    info = next((i for i in infos if i["name"] == name), None) if chosen_set is None else \
        {"counts": (chosen_set.get("provenance") or {}).get("splits") or {}}
    known = list(info["counts"]) if info and info["counts"] else \
        list(dict.fromkeys([run_data.get("train_split", "train"), run_data.get("test_split", "test")]))
    first = run_data.get("train_split", "train") if same else known[0]
    splits = cols[1].multiselect("Splits", known, default=[first] if first in known else known[:1],
                                 key=f"attr_splits_{scope}_{choice}")
    count = (info or {}).get("counts", {}).get(first) if first in known else None
    fallback = 0 if count and count <= SCORE_ALL_UP_TO else 200        # a built-in task: all its examples
    n = cols[2].number_input("Examples per split (0 = all)", min_value=0, step=50, key=f"attr_n_{scope}_{choice}",
                             value=(run_data.get("n_train") or fallback) if same else fallback)
    prefill = run_data.get("options") if same and run_data.get("options") and chosen_set is None else None
    options = loader_options(f"attr_options_{scope}_{choice}", expanded=bool(prefill),
                             value=yaml.safe_dump(prefill, sort_keys=False) if prefill else "")
    st.caption("A key-token study trains on these examples' top-k words: cover its training split and at least "
               "as many examples as its runs train on.")
    if options is None:
        return None
    if not splits:
        st.error("Choose at least one split.")
        return None
    if chosen_set is not None:
        options = {**options, "path": chosen_set["path"]}
    return {"name": name, "options": options, "splits": splits, **({"n": int(n)} if n else {})}


def method_section(data: dict | None = None) -> dict:
    """Method, IG steps and baseline; on the built-in study task the method it was measured with
    (launch_options' `key_study`: gradient × input ranks its fact words first most often)."""
    known = queries.launch_options().get("key_study") or {}
    default = known.get("method", "ig") if data and data["name"] == known.get("dataset") else "ig"
    cols = st.columns(3)
    method = cols[0].selectbox("Method", list(METHODS), index=list(METHODS).index(default), format_func=METHODS.get,
                               key=f"attr_method_{default}", help=METHODS_HELP)
    steps = cols[1].number_input("IG steps", min_value=1, max_value=1024, value=32, key="attr_steps",
                                 disabled=method != "ig",
                                 help="Quadrature nodes of integrated gradients; raise them when the completeness "
                                      "error is large.")
    baseline = cols[2].selectbox("Baseline", list(BASELINES), format_func=BASELINES.get, key="attr_baseline",
                                 help="What a token is replaced by: 'no token here' while its position stays.")
    return {"method": method, "steps": int(steps), "baseline": baseline}


def submit_section(source: dict | None, data: dict | None, method: dict) -> None:
    if st.button("Compute attributions", type="primary", key="attr_start", disabled=source is None or data is None):
        if not jobs_view.submit(lambda: api.submit_attribution(source, data, **method), picker=JOB_PICKER,
                                message_key=MESSAGE,
                                describe=lambda job_id: f"Attribution job #{job_id} queued ({md(method['method'])} "
                                                        f"on {data['name']})."):
            return
    jobs_view.show_message(MESSAGE)


def job_columns(job: dict) -> dict:
    p, s, params = job["progress"] or {}, job["summary"] or {}, job["params"]
    return {"source": s.get("source") or json.dumps(params.get("source")), "method": params.get("method", ""),
            "dataset": (params.get("data") or {}).get("name", ""),
            "examples/s": p.get("examples_per_s"), "completeness error (mean)": s.get("mean_completeness_error"),
            "key word first": (s.get("key_agreement") or {}).get("first"),
            "attribution": s.get("attribution_id") or p.get("attribution_id")}


def no_jobs() -> None:
    empty_state("No attribution job yet: choose a scoring model and data above and press *Compute attributions*. "
                "A worker (`cotdistill up`) picks the job up.")


# ------------------------------------------------------------------------------------------ read

def pick_attribution() -> dict | None:
    rows = queries.attributions()
    if not rows:
        empty_state("No attribution yet: compute one above. It shows here as soon as its job stores scores.")
        return None
    by_id = {a["id"]: a for a in rows}
    wanted = st.query_params.get("attribution")
    ids = list(by_id)
    index = ids.index(int(wanted)) if wanted and wanted.isdigit() and int(wanted) in by_id else 0
    a = by_id[st.selectbox("Attribution", ids, index=index, key="attribution_pick", format_func=lambda i: (
        f"#{i} · {by_id[i]['method']} · {by_id[i]['source']} · {by_id[i]['dataset']} · {by_id[i]['n']} example(s)"))]
    job = next((j for j in queries.jobs("attribution") if j["id"] == a["job_id"]), None)
    summary = (job or {}).get("summary") or {}
    line = f"Scored by {md(a['source'])} with {code(a['method'])} on {md(a['dataset'])}: {int(a['n'])} example(s)"
    if job and job["status"] != "succeeded":
        line += f" so far (job #{job['id']} {job['status']})"
    if summary.get("mean_completeness_error") is not None:
        line += (f"; completeness error mean {summary['mean_completeness_error']:.2g}, "
                 f"max {summary['max_completeness_error']:.2g} nats")
    st.caption(line)                                        # text: escaped where it is built
    if summary.get("key_agreement"):
        agreement_line(summary["key_agreement"])
    return a if a["n"] else None


def agreement_line(found: dict) -> None:
    """How well the scores found the examples' known key words (built-in tasks only), as metrics."""
    st.markdown(f"**Agreement with the known key words** ({found['n']} example(s) whose key words the task knows):")  # text: a count
    cols = st.columns(3)
    cols[0].metric("Key word ranked first", f"{found['first']:.0%}",
                   help="Share of examples whose highest-scoring rationale word is one of its key words.")
    cols[1].metric("Mean rank of the best key word", f"{found['mean_rank']:.2f}",
                   help="1 is perfect: the best-ranked key word of each example, ranked by score (ties to the "
                        "earlier word, as the key_tokens perturbation keeps them).")
    cols[2].metric("Key words in the top m", f"{found['recall']:.0%}",
                   help="Share of key words among their example's m highest-scoring words, m its number of key "
                        "words: what key_tokens with k = m keeps.")


def example_scores(attribution: dict) -> None:
    """One example: its question and gold label, the rationale shaded by score, its top words, and the
    IG completeness error."""
    rows = {r["example_id"]: r for r in queries.attribution_scores(attribution["id"])}
    try:
        examples = {e["example_id"]: e for e in queries.attributed_examples(attribution["id"])}
    except Exception as e:                    # the dataset cannot be read here: show the scores anyway
        st.caption(f"The examples cannot be read ({md(e)}); showing the scores alone.")
        examples = {}
    left, right = st.columns([3, 1])
    picked = left.selectbox("Example", list(rows), key="attr_example",
                            format_func=lambda i: f"{i}: {(examples.get(i) or {}).get('question', '')[:80]}")
    units = right.radio("Units", ["words", "student tokens"], horizontal=True, key="attr_units")
    r, ex = rows[picked], examples.get(picked)
    if ex:
        text_block(ex["question"])
        st.markdown(f"**Gold label:** {code(ex['label'])}" + _choice_text(ex))  # text: _choice_text escapes
    if units == "words":
        words = r["words"] or []
        token_heatmap([w + " " for w in words[:-1]] + words[-1:], r["word_scores"] or [])
        ranked = sorted(range(len(words)), key=lambda i: (-r["word_scores"][i], i))
        st.caption("Highest-scoring words: " + ", ".join(f"{code(words[i])} {r['word_scores'][i]:+.3g}" for i in ranked[:5]))
    else:
        token_heatmap(r["tokens"], r["scores"])
    st.caption("Green: the word raises log p(gold label); red: lowers it. Hover a word for its score.")
    if r["completeness_error"] is not None:
        st.metric("IG completeness error (nats)", f"{r['completeness_error']:.3g}",
                  help="|Σ scores − (f(x) − f(baseline))|: near 0 when the scores account for the whole change of "
                       "log p(label); raise the IG steps when it is not.")
    else:
        st.caption(f"No completeness check for {code(attribution['method'])} (integrated gradients only).")


def _choice_text(ex: dict) -> str:
    if ex["kind"] != "multiple_choice" or not ex.get("choices"):
        return ""
    index = "abcdefghijklmnopqrstuvwxyz".find(ex["label"])
    return f" ({md(ex['choices'][index])})" if 0 <= index < len(ex["choices"]) else ""


def frequent_tokens(attribution: dict) -> None:
    """The words most often among each example's top k, as content words, function words, or words
    that name the answer."""
    k = st.number_input("Key tokens per example (k)", min_value=1, max_value=50, value=3, key="key_k")
    try:
        rows = queries.key_token_stats(attribution["id"], int(k))
    except Exception as e:                    # the examples (gold answers) cannot be read here
        st.error(f"Could not count the key tokens: {md(e)}")
        return
    if not rows:
        st.caption("No scored words yet.")
        return
    slots = sum(r["count"] for r in rows)
    shares = {c: sum(r["count"] for r in rows if r["category"] == c) / slots for c in charts.CATEGORY_COLOURS}
    st.markdown(f"Of the top-{int(k)} words of {int(attribution['n'])} example(s): "  # text: shares and fixed names
                + " · ".join(f"**{shares[c]:.0%}** {name}" for c, name in (
                    ("content", "content words"), ("function", "function words"), ("answer", "name the answer"))))
    left, right = st.columns([3, 2])
    left.plotly_chart(charts.key_token_counts(rows), key="key_token_counts")
    tables.show(pd.DataFrame(rows, columns=["token", "category", "count", "share"]), where=right,
                key="key_token_table", column_config={"share": st.column_config.NumberColumn(format="%.2f")})
    st.caption("A word names the answer when it equals the example's gold label or the gold choice's text; "
               "function words are a short English stopword list.")


# ------------------------------------------------------------------------------------------ study

def study_section(attribution: dict) -> None:
    """The one-click study: label only, full rationale, key tokens top k and random k (after the label)
    for each k, × seeds, on a base config (the source run's, editable). The plan says what queueing
    would do; once queued, what was queued, and the button has nothing new to queue."""
    if not attribution["params"].get("scores_file"):
        st.caption("The study needs the finished attribution (its scores file): wait for its job to succeed.")
        return
    st.caption("Trains the student with: the label only (`none`), the full rationale after the label, and for "
               "each k the k highest-scoring words of each rationale (in their order) or k random words of it. "
               "Key tokens above random words of the same k means the scores found the words that matter.")
    defaults = study_defaults(attribution)
    if defaults.get("shows"):
        st.caption(f"On {code(defaults['dataset'])} the defaults below should show: {md(defaults['shows'])}")
    cols = st.columns([2, 2, 3])
    ks_text = cols[0].text_input("k values", ", ".join(map(str, defaults["ks"])), key=f"study_ks_{attribution['id']}")
    seeds_text = cols[1].text_input("Seeds", ", ".join(map(str, defaults["seeds"])),
                                    key=f"study_seeds_{attribution['id']}")
    name = cols[2].text_input("Experiment name", f"key-tokens-a{attribution['id']}",
                              key=f"study_name_{attribution['id']}").strip()
    base_text = st.text_area("Base run config (YAML): dataset, student, training, evaluation",
                             value=yaml.safe_dump(study_base(attribution), sort_keys=False), height=260,
                             key=f"study_base_{attribution['id']}")
    try:
        ks = mx.parse_list(ks_text, int, "k values")
        seeds = mx.parse_list(seeds_text, int, "seeds")
        base = api.parse_yaml(base_text) or {}
        if not isinstance(base, dict):
            raise ValueError("the base config must be a mapping")
        if not name:
            raise ValueError("give the experiment a name")
        if problem := api.name_problem(name, "the experiment name"):
            raise ValueError(problem)
    except ValueError as e:
        st.error(f"Study: {md(e)}")
        return
    _coverage(attribution, base)
    matrix = api.key_token_study_matrix(attribution["id"], ks=ks, seeds=seeds, base=base, name=name)
    plan, problem = forms.plan_of(matrix)
    launched = st.session_state.get("study_launched")
    if launched and launched["name"] == name:
        _study_launched(launched)
    if problem:
        st.error(f"Study: {md(problem)}")
        return
    arms = 2 + 2 * len(ks)
    nothing = plan["in_experiment"] == plan["runs"]
    line = f"**{arms} arms × {len(seeds)} seed(s) = {arms * len(seeds)} run(s)**"
    if nothing:
        line += (f": experiment {md(repr(name))} holds all {plan['runs']} ({plan['queued']} queued or running, "
                 f"{plan['in_experiment'] - plan['queued']} finished). Nothing new to queue; change the k values, "
                 f"seeds or name for another study.")
    else:
        line += ": " + launch_view.plan_sentence(name, plan).removeprefix("Launching queues ")
    st.markdown(line)                                       # text: escaped where it is built
    label = "Nothing new to queue" if nothing else f"Queue the key-token study ({plan['new']} new run(s))"
    if st.button(label, type="secondary" if nothing else "primary", key="study_start", disabled=nothing):
        try:
            launched = api.key_token_study(attribution["id"], ks=ks, seeds=seeds, base=base, name=name)
        except (ValueError, LookupError) as e:
            st.error(f"Not queued: {md(e)}")
            return
        st.session_state["study_launched"] = launched
        st.session_state[STUDY_PICKER] = launched["name"]       # the accuracy-against-k section shows it
        st.session_state["experiment"] = launched["name"]       # and the Runs and Compare screens
        queries.forget_runs()
        st.rerun()


def _study_launched(launched: dict) -> None:
    st.success(f"Study {md(repr(launched['name']))}: {len(launched['queued'])} run(s) queued, "
               f"{len(launched['reused'])} reused from identical finished runs, {len(launched['kept'])} kept.")
    left, right = st.columns(2)
    left.page_link("screens/runs.py", label="Watch its runs", icon=":material/monitoring:",
                   query_params={"experiment": launched["name"]})
    right.page_link("screens/compare.py", label="Compare its arms", icon=":material/bar_chart:",
                    query_params={"experiment": launched["name"]})


def study_defaults(attribution: dict) -> dict:
    """k values and seeds the study form starts from: the built-in study task's (launch_options'
    `key_study`, sized to finish on a CPU) when the attribution scored that task, else 1, 2, 3 × 0, 1, 2."""
    known = queries.launch_options().get("key_study") or {}
    if known and (attribution["params"].get("data") or {}).get("name") == known["dataset"]:
        return known
    return {"ks": [1, 2, 3], "seeds": [0, 1, 2]}


def study_base(attribution: dict) -> dict:
    """The base config the study form starts from: the source run's config (without what the study
    varies), else the default config on the attribution's data; training cut to the scored examples."""
    source, data = attribution["params"].get("source") or {}, attribution["params"].get("data") or {}
    base = None
    if "run_id" in source:
        try:
            base = dict(queries.run_detail(int(source["run_id"]))["config"])
        except api.NotFound:
            base = None
    if base is None:
        base = dict(queries.launch_options()["defaults"])
        base["data"] = {**base["data"], "name": data.get("name"), "options": data.get("options") or {}}
        if "student" in source:
            base["student"] = {**base["student"], **source["student"]}
    base = {k: v for k, v in base.items() if k not in DROPPED_FROM_BASE}
    known = queries.launch_options().get("key_study") or {}
    if known.get("train") and (base.get("data") or {}).get("name") == known.get("dataset"):
        base["train"] = {**(base.get("train") or {}), **known["train"]}     # the built-in study's own training
    if data.get("n") and (not base["data"].get("n_train") or base["data"]["n_train"] > data["n"]):
        base["data"] = {**base["data"], "n_train": data["n"]}
    return base


def _coverage(attribution: dict, base: dict) -> None:
    """Warn when the study would train on examples the attribution did not score."""
    data, scored = base.get("data") or {}, attribution["params"].get("data") or {}
    train = data.get("train_split", "train")
    problems = []
    if data.get("name") != scored.get("name") or (data.get("options") or {}) != (scored.get("options") or {}):
        problems.append(f"the base trains on {data.get('name')!r} {data.get('options') or ''}, the attribution "
                        f"scored {scored.get('name')!r} {scored.get('options') or ''}")
    if train not in scored.get("splits", ["train"]):
        problems.append(f"the attribution did not score split {train!r}")
    if scored.get("n") and (not data.get("n_train") or data["n_train"] > scored["n"]):
        problems.append(f"it scored the first {scored['n']} examples, the base trains on "
                        f"{data.get('n_train') or 'all'}")
    if problems:
        st.warning("The key-token runs need a score for every training example: " + "; ".join(md(p) for p in problems) + ".")


# ------------------------------------------------------------------------------------------ accuracy against k

def accuracy_vs_k() -> None:
    """A study's accuracy against k: key tokens and the random control, with the references."""
    studies = [e for e in queries.experiments() if "key_tokens" in json.dumps(e["factors"])]
    if not studies:
        empty_state("No key-token study yet: queue one from a finished attribution above, or launch an "
                    "experiment that sweeps `key_tokens` k next to `random_subset` k.")
        return
    by_name = {e["name"]: e for e in studies}
    if st.session_state.get(STUDY_PICKER) not in by_name:
        st.session_state.pop(STUDY_PICKER, None)
    study = by_name[st.selectbox("Study", list(by_name), key=STUDY_PICKER)]
    rows = queries.runs(study["id"])
    arms = queries.compare(tuple(r["id"] for r in rows)) if rows else []
    if not any(p["k"] is not None for p in charts.study_points(arms)):
        waiting = sum(r["status"] in ("queued", "running") for r in rows)
        st.info(f"No key-token arm of {md(repr(study['name']))} has finished yet ({int(waiting)} of {len(rows)} run(s) queued or "
                f"running): the chart appears as soon as one does.", icon=":material/info:")
        st.page_link("screens/runs.py", label="Watch the runs", query_params={"experiment": study["name"]})
        return
    panels = sorted({(a["dataset"], a["student"]) for a in arms})
    if len(panels) > 1:
        panel = st.selectbox("Dataset · student", panels, format_func=" · ".join, key="k_panel")
        arms = [a for a in arms if (a["dataset"], a["student"]) == panel]
    notes = compare_view.collapse_notes(rows, None)            # the runs' own constant-answer flags
    arms = compare_view.mark_collapsed(arms, notes)
    st.plotly_chart(charts.accuracy_vs_k(arms, notes), key="accuracy_vs_k")
    st.caption("Each point: mean test accuracy over seeds with its 95% t-interval (faint dots: the seeds; a cross: "
               "a run not distinguishable from a constant answer, ⚠ above its point). Dashed: the full rationale "
               "after the label; dotted: the label only; bands: their intervals.")
    points = charts.study_points(arms)
    flagged = [p for p in points if any(p["collapsed"])]
    if flagged:
        st.warning("Constant answers: " + "; ".join(                # text: series escaped, numbers
            md(p["series"]) + (f", k={p['k']}" if p["k"] is not None else "") + ": seed(s) "
            + ", ".join(str(s) for s, c in zip(p["seeds"], p["collapsed"]) if c) for p in flagged) + f" — {charts.COLLAPSED[2:]}: their accuracy says little about what they learned.",
            icon=":material/warning:")
    frame = pd.DataFrame(points)
    frame["flags"] = [", ".join(f"seed {s}: constant answer" for s, c in zip(p["seeds"], p["collapsed"]) if c)
                      for p in points]
    frame = frame.drop(columns=["runs", "collapsed"])
    frame["accuracies"] = frame["accuracies"].map(lambda xs: " ".join(f"{x:.4f}" for x in xs))
    frame["seeds"] = frame["seeds"].map(lambda xs: " ".join(map(str, xs)))
    tables.show(frame, key="k_table",
                column_config={c: st.column_config.NumberColumn(format="%.3f") for c in ("mean", "low", "high")})
