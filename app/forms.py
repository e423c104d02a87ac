"""The Launch page's form sections. Each draws its widgets and returns plain values for
app/matrix.py; a bad entry is reported next to its widget and returned as nothing.
"""

from __future__ import annotations

import yaml
import streamlit as st

from app import matrix as mx
from app import queries
from app.components import empty_state, training_sequence
from worker import api

DEFAULT_DATASET = "synthetic-count"        # the offline testbed: runs anywhere in minutes
STUDENT_LABELS = {"tiny:tiny": "tiny (2×128, from scratch)", "tiny:small": "tiny small (4×256)",
                  "tiny:base": "tiny base (6×384)", "smollm2-135m": "SmolLM2-135M (offline, pretrained)"}


def data_section(infos: list[dict]) -> tuple[list[str], dict]:
    """Which datasets, how many examples, loader options → (dataset names, base `data` section)."""
    usable = [i["name"] for i in infos if not i["error"]]
    default = [DEFAULT_DATASET] if DEFAULT_DATASET in usable else usable[:1]
    names = st.multiselect("Datasets", usable, default=default,
                           help="Several datasets make a factor: every other choice runs on each.")
    left, right = st.columns(2)
    n_train = left.number_input("Training examples (0 = all)", min_value=0, value=0, step=100)
    n_test = right.number_input("Test examples (0 = all)", min_value=0, value=0, step=100)
    data = {"n_train": int(n_train) or None, "n_test": int(n_test) or None}
    with st.expander("Loader options (YAML)"):
        text = st.text_area("Options passed to the dataset loader", value="",
                            placeholder="n_items: 3\nn_objects: 12", key="loader_options")
    try:
        options = yaml.safe_load(text) or {}
        if not isinstance(options, dict):
            raise ValueError("the options must be a mapping (key: value lines)")
        data["options"] = options
    except (yaml.YAMLError, ValueError) as e:
        st.error(f"Loader options: {e}")
    return names, data


def student_section(options: dict) -> list[dict]:
    """Which students: built-in tiny sizes, the offline SmolLM2, or any hub id / local path."""
    choices = [f"tiny:{s}" for s in options["tiny_sizes"]] + options["pretrained"]
    picked = st.multiselect("Students", choices, default=choices[:1],
                            format_func=lambda c: STUDENT_LABELS.get(c, c))
    hub_id = st.text_input("…and/or a Hugging Face model id or local path", value="",
                           placeholder="HuggingFaceTB/SmolLM2-360M")
    defaults = options["defaults"]["student"]
    left, right = st.columns(2)
    vocab = left.number_input("Tiny student's vocabulary", min_value=64, value=defaults["vocab_size"], step=64)
    max_length = right.number_input("Max sequence length (tokens)", min_value=16, value=defaults["max_length"], step=16)
    return mx.student_entries(picked, hub_id, vocab_size=int(vocab), max_length=int(max_length))


def perturbation_section(defaults: dict[str, dict]) -> list[dict]:
    """Which perturbations of the rationale, each with its parameters (comma-separated numbers sweep)."""
    kinds = st.multiselect("Perturbations", list(defaults), default=["none"],
                           help="What is done to the rationale before training. `none` keeps it.")
    variants = []
    for kind in kinds:
        if kind == "none":
            variants.append({"kind": "none"})
            continue
        with st.expander(f"{kind}: parameters", expanded=kind != "shuffle"):
            try:
                variants += _perturbation_params(kind, defaults[kind])
            except ValueError as e:
                st.error(str(e))
    return variants


def _perturbation_params(kind: str, defaults: dict) -> list[dict]:
    level = st.selectbox("Units", ["token", "word"], key=f"{kind}_level",
                         help="Perturb the student's tokens, or whitespace-separated words.")
    values, fixed, scores_file = {}, {}, None
    if kind == "mask":
        values["p"] = mx.parse_list(st.text_input("Mask probability p (comma-separated to sweep)",
                                                  str(defaults["p"]), key="mask_p"), float, "mask p")
        fixed["mode"] = st.selectbox("Masked units are", ["drop", "replace"], key="mask_mode")
    elif kind == "filler":
        values["length"] = mx.parse_list(st.text_input("Filler length ('same' or a number of units)",
                                                       str(defaults["length"]), key="filler_length"),
                                         mx.int_or_same, "filler length")
    elif kind in mx.KEEP_KINDS:
        by = st.radio("Keep", ["fraction", "k"], horizontal=True, key=f"{kind}_by",
                      format_func=lambda b: "a fraction of the units" if b == "fraction" else "k units")
        default = str(defaults["fraction"]) if by == "fraction" else "5"
        text = st.text_input(f"{by} (comma-separated to sweep)", default, key=f"{kind}_{by}")
        values[by] = mx.parse_list(text, float if by == "fraction" else int, f"{kind} {by}")
        if kind == "key_tokens":
            fixed["order"] = st.selectbox("Order of the kept units", ["original", "shuffled"], key="key_order")
            scores_file = st.text_input("Scores file (JSONL of {example_id, scores})", key="key_scores").strip()
            if not scores_file:
                raise ValueError("key_tokens needs a scores file: per-token scores of each example's rationale")
    return mx.perturbation_variants(kind, level=level, values=values, fixed=fixed, scores_file=scores_file)


def seeds_input() -> list[int]:
    text = st.text_input("Seeds", "0, 1, 2", help="One run per seed for every other combination.")
    try:
        return mx.parse_list(text, int, "seeds")
    except ValueError as e:
        st.error(str(e))
        return []


def training_section(defaults: dict) -> tuple[dict, dict]:
    """Training and evaluation settings → (base `train`, base `eval`)."""
    train = defaults["train"]
    cols = st.columns(4)
    steps = cols[0].number_input("Training steps", min_value=1, value=train["steps"], step=50)
    batch = cols[1].number_input("Batch size", min_value=1, value=train["batch_size"], step=4)
    lr = cols[2].number_input("Learning rate", min_value=0.0, value=float(train["lr"]), step=1e-4, format="%.6f")
    warmup = cols[3].number_input("Warmup steps", min_value=0, value=train["warmup_steps"], step=10)
    mode = st.selectbox("Evaluation", ["auto", "score", "generate"],
                        help="auto: generate for `before` (the answer follows the rationale), score otherwise.")
    log_every = max(1, min(train["log_every"], int(steps) // 5 or 1))     # a curve even for short runs
    return ({"steps": int(steps), "batch_size": int(batch), "lr": float(lr), "warmup_steps": int(warmup),
             "log_every": log_every}, {"mode": mode})


def plan_section(matrix: dict | None) -> dict | None:
    """How many runs the matrix expands to and how many already exist; None when it is not valid."""
    if matrix is None:
        return None
    try:
        plan = queries.plan(matrix)
    except ValueError as e:                   # ConfigError: a bad value, named with its cell
        st.error(f"This matrix is not valid: {e}")
        return None
    cols = st.columns(3)
    cols[0].metric("Runs in the matrix", plan["cells"])
    cols[1].metric("Already done (reused)", plan["existing"])
    cols[2].metric("New runs", plan["new"])
    if any(e["name"] == matrix["name"] for e in queries.experiments()):
        st.warning(f"An experiment named {matrix['name']!r} exists: launching adds this matrix's missing, "
                   f"failed or cancelled cells to it.")
    return plan


def preview_section(plan: dict | None, conditions: list[dict]) -> None:
    """The exact training sequence of one example under every condition, supervised tokens shaded."""
    st.caption("Shaded tokens are supervised (they carry loss); the others are context only.")
    if plan is None or not conditions:
        empty_state("Choose a valid matrix above to preview what the student is trained on.")
        return
    if not st.toggle("Show the training sequences (computed by a worker)", key="show_preview"):
        return
    try:
        rows = queries.preview(plan["first_config"], conditions, n=1)
    except TimeoutError as e:
        st.error(f"The preview timed out: {e}")
        return
    except Exception as e:                   # the worker's error, e.g. a dataset it cannot read
        st.error(f"The worker could not build the preview: {e}")
        return
    for row in rows:
        training_sequence(row, title=row.get("label"))


def launch_section(matrix: dict | None, plan: dict | None) -> None:
    """The launch button, then what was launched with links to its runs and its comparison."""
    if st.button(f"Launch {plan['new'] if plan else 0} new run(s)", type="primary", key="launch",
                 disabled=plan is None):
        try:
            st.session_state["launched"] = api.submit_matrix(matrix)
        except ValueError as e:
            st.error(f"Not launched: {e}")
        else:
            queries.forget_runs()
            st.rerun()                      # the plan above now counts the launched runs
    launched = st.session_state.get("launched")
    if not launched or launched["name"] != (matrix or {}).get("name"):
        return
    st.session_state["experiment"] = launched["name"]
    st.success(f"Launched experiment {launched['name']!r}: {len(launched['queued'])} run(s) queued, "
               f"{len(launched['reused'])} reused from identical finished runs, {len(launched['kept'])} kept.")
    left, right = st.columns(2)
    with left:
        st.page_link("screens/runs.py", label="Watch its runs", icon=":material/monitoring:",
                     query_params={"experiment": launched["name"]})
    with right:
        st.page_link("screens/compare.py", label="Compare its arms", icon=":material/bar_chart:",
                     query_params={"experiment": launched["name"]})
