"""Pieces of screen shared by the pages: the token heatmap, empty states, the experiment picker.

    token_heatmap(row["tokens"], row["weights"])      # supervised tokens shaded, the rest plain
    experiment = experiment_picker()                   # preselected from ?experiment=NAME
"""

from __future__ import annotations

import html
import math
from typing import Sequence

import streamlit as st

from app import queries
from app.safe import code, md

POSITIVE = (34, 139, 34)       # green: supervised / important
NEGATIVE = (200, 40, 40)       # red: negative scores (attributions can be negative)
ALL_RUNS = "(all runs)"


# ------------------------------------------------------------------------------------------ tokens

def token_heatmap_html(tokens: Sequence[str], scores: Sequence[float], *, vmax: float | None = None) -> str:
    """Tokens as HTML spans, each shaded by its score (green above zero, red below, |score| / vmax as
    opacity) with the score as a tooltip. Token text is escaped; whitespace and newlines are kept."""
    if len(tokens) != len(scores):
        raise ValueError(f"token_heatmap: {len(tokens)} tokens but {len(scores)} scores")
    finite = [abs(float(s)) for s in scores if s is not None and math.isfinite(float(s))]
    scale = vmax if vmax else max(finite, default=0.0) or 1.0
    spans = []
    for token, score in zip(tokens, scores):
        value = float(score) if score is not None else 0.0
        alpha = min(abs(value) / scale, 1.0) if math.isfinite(value) else 0.0
        r, g, b = POSITIVE if value >= 0 else NEGATIVE
        spans.append(f'<span title="{value:.4g}" style="background: rgba({r},{g},{b},{alpha * 0.55:.3f}); '
                     f'border-radius: 2px">{html.escape(token)}</span>')
    return ('<div class="token-heatmap" style="font-family: monospace; white-space: pre-wrap; '
            f'line-height: 1.7">{"".join(spans)}</div>')


def token_heatmap(tokens: Sequence[str], scores: Sequence[float], *, vmax: float | None = None) -> str:
    """Render `token_heatmap_html` on the page; returns the HTML."""
    body = token_heatmap_html(tokens, scores, vmax=vmax)
    st.html(body)
    return body


def training_sequence(row: dict, title: str | None = None) -> None:
    """One preview row: a heading, then its tokens with the supervised ones (weight > 0) shaded."""
    supervised = sum(w > 0 for w in row["weights"])
    head = md(title or f"{row['placement']} · {row['perturbation']}")
    st.markdown(f"**{head}** — {len(row['tokens'])} tokens, {supervised} supervised"  # text: head escaped, counts
                + (" · *cut to the student's max length*" if row.get("truncated") else "")
                + "".join(f" · {md(name)} unit {code(repr(text))}" for name, text in (row.get("placeholders") or {}).items())
                + (f" · starts with {code(row['bos'])}" if row.get("bos") else ""))
    if row.get("label_share") is not None:
        how = ("segment normalisation: 1 / (1 + rationale weight), the same for every placement"
               if row.get("loss_normalization") == "segment" else
               f"token normalisation, over {row.get('label_share_n')} training examples: it shrinks as the "
               f"rationale grows")
        st.caption(f"Label share of the loss: **{row['label_share']:.3f}** ({how}).")  # text: numbers
    token_heatmap(row["tokens"], row["weights"], vmax=max(row["weights"], default=1.0) or 1.0)


def text_block(text: str | None, *, muted: bool = False) -> None:
    """Dataset text shown as is: escaped, line breaks kept, no markdown interpretation."""
    style = "white-space: pre-wrap" + ("; opacity: 0.75" if muted else "")
    st.html(f'<div style="{style}">{html.escape(text or "—")}</div>')


# ------------------------------------------------------------------------------------------ states

def empty_state(message: str, *, page: str | None = None, label: str | None = None) -> None:
    """Say what to do next instead of drawing an empty chart."""
    st.info(message, icon=":material/info:")             # text: callers pass their own sentences
    if page:
        st.page_link(page, label=label or "Go there")


def run_label(run: dict) -> str:
    return f"#{run['id']} · {run['dataset']} · {run['student']} · {run['arm']} · seed {run['seed']}"


def format_duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return ""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m" if hours else (f"{minutes}m {secs:02d}s" if minutes else f"{secs}s")




def format_bytes(n: float | None) -> str:
    """1.6e9 → '1.6 GB', 5.4e8 → '540 MB' (decimal units, as disks are sold)."""
    if n is None or not math.isfinite(n):
        return ""
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            value = n / size
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{int(n)} B"


def collapse_note(summary: dict) -> str | None:
    """The warning for a flagged run, or None: it answers (nearly) one constant label, scores
    significantly below the majority baseline, or generated no parseable label too often (the reasons
    joined). Older runs have no such summary fields: then there is nothing to say."""
    notes = [summary[key] for flag, key in (("below_baseline", "below_baseline_reason"),
                                            ("high_unparsed", "unparsed_reason"))
             if summary.get(flag) and summary.get(key)]
    if summary.get("collapsed"):
        reason, plain = summary.get("collapse_reason"), "not distinguishable from a constant answer"
        notes.insert(0, plain if not reason else reason if reason.startswith(plain) else f"{plain} ({reason})")
    return "; ".join(notes) or None


def flag_label(summary: dict) -> str:
    """The short warning of the runs table: which flags a run raised ('' for none)."""
    names = [name for flag, name in (("collapsed", "constant answer"), ("below_baseline", "below baseline"),
                                     ("high_unparsed", "unparsed")) if summary.get(flag)]
    return "⚠ " + ", ".join(names) if names else ""


# ------------------------------------------------------------------------------------------ pickers

def experiment_picker(*, allow_all: bool = False, key: str = "experiment_picker") -> dict | None:
    """A select box of the experiments, newest first, preselected from `?experiment=NAME` or from the
    last launch; the choice goes back into the URL so that the view can be shared. Returns the
    experiment (id, name, factors, counts), None for "all runs" or when there is none."""
    experiments = queries.experiments()
    names = ([ALL_RUNS] if allow_all else []) + [e["name"] for e in experiments]
    if not names:
        return None
    wanted = st.query_params.get("experiment") or st.session_state.get("experiment")
    index = names.index(wanted) if wanted in names else 0
    choice = st.selectbox("Experiment", names, index=index, key=key)
    if choice == ALL_RUNS:
        st.query_params.pop("experiment", None)
        return None
    st.query_params["experiment"] = choice
    st.session_state["experiment"] = choice
    return next(e for e in experiments if e["name"] == choice)


def loader_options(key: str, *, value: str = "", placeholder: str = "", expanded: bool = False) -> dict | None:
    """The dataset loader's options as a YAML mapping in an expander; None (with the error shown)
    when the text is not a mapping."""
    from worker import api
    with st.expander("Loader options (YAML)", expanded=expanded):
        text = st.text_area("Options passed to the dataset loader", value=value, placeholder=placeholder, key=key)
    try:
        options = api.parse_yaml(text) or {}
        if not isinstance(options, dict):
            raise ValueError("the options must be a mapping (key: value lines)")
    except ValueError as e:
        st.error(f"Loader options: {md(e)}")
        return None
    return options
