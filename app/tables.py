"""The pages' tables, built from the jobs API's plain data with pandas, and `show`, the one way a page
draws a table (no other Streamlit calls here except column settings, so the shaping can be tested on
its own).

    frame = runs_frame(api.list_runs(experiment=...), api.curves(ids))
    frame = compare_frame(api.compare(ids), notes)          # the table under the bars, and its CSV
    show(frame, key="runs_table", column_config=runs_columns())

Every table of the app goes through `show`: a missing value (None, NaN, NaT, or an empty string) is
drawn as "—", never as "None", "nan" or "NaT" (tests/app/test_app_architecture.py checks that no page
calls st.dataframe or st.table itself).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone

import pandas as pd
import streamlit as st

from app.components import collapse_note, flag_label, format_duration
from app.safe import md

EMPTY = "—"


# ------------------------------------------------------------------------------------------ drawing

def display_frame(data) -> pd.DataFrame:
    """`data` (a frame, a list of row dicts or a dict of columns) as the frame `show` draws: blank
    strings become missing values, so that they too are drawn as EMPTY. Numbers, lists and other
    values are kept as they are (sorting and number formats keep working)."""
    frame = data.copy() if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values):
            frame[column] = pd.Series([None if _missing(v) else v for v in values], index=frame.index, dtype=object)
    return frame


def _missing(value) -> bool:
    if isinstance(value, str):
        return not value.strip()
    return pd.api.types.is_scalar(value) and bool(pd.isna(value))


def show(data, *, key: str, column_config: dict | None = None, where=None, **options):
    """Draw a table: missing cells as EMPTY, no index. `where` is a column or container (default: the
    page)."""
    return (where or st).dataframe(display_frame(data), hide_index=True, key=key, column_config=column_config,
                                   placeholder=EMPTY, **options)


# ------------------------------------------------------------------------------------------ runs

def progress_of(run: dict) -> tuple[float, str]:
    """(fraction done, phase text) of a run: training steps, then evaluation items."""
    p, status = run["progress"] or {}, run["status"]
    if status == "succeeded":
        return 1.0, "done"
    if status == "queued":
        return 0.0, "queued" + (f" (retry {run['attempt']})" if run["attempt"] else "")
    if status == "running" and p.get("phase") not in (None, "train") and p.get("phase_total"):
        done = p.get("phase_done") or 0          # load, validate, evaluate, save: their own progress
        return done / p["phase_total"], f"{p['phase']} {done}/{p['phase_total']}"
    total = p.get("total") or run.get("total_steps")
    step = p.get("step", run["step"]) or 0
    text = f"train {step}/{total}" if total else status
    if status != "running":
        text = f"{status} at {text}"
    return (step / total if total else 0.0), text


def moment(iso: str | None) -> datetime | None:
    """An API timestamp as an aware datetime (SQLite gives naive ones; every time stored is UTC)."""
    if not iso:
        return None
    value = datetime.fromisoformat(iso)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def elapsed(run: dict, now: datetime) -> tuple[float | None, float | None]:
    """(seconds queued, seconds running) of a run, queued → started → finished. Queued counts from
    when the run was last sent to the queue (submission, retry) to its start, or to now while it
    waits, or to its end when it was cancelled before starting; running from its (latest) start to
    its end, or to now. None where a phase has not happened."""
    sent = moment(run.get("enqueued_at")) or moment(run.get("created_at"))
    started, finished = moment(run.get("started_at")), moment(run.get("finished_at"))
    status = run["status"]
    if status == "queued":
        return (max(0.0, (now - sent).total_seconds()) if sent else None), None
    if started is None or (sent and started < sent) or (finished is not None and started > finished):
        # it ended before this attempt ran (cancelled in the queue; an older start does not count)
        end = finished or now
        return (max(0.0, (end - sent).total_seconds()) if sent else None), None
    queued = max(0.0, (started - sent).total_seconds()) if sent and sent <= started else None
    return queued, max(0.0, ((finished if status != "running" and finished else now) - started).total_seconds())


RUN_COLUMNS = ("run", "arm", "seed", "status", "progress", "phase", "ETA", "accuracy", "warning", "loss",
               "last loss", "tokens/s", "waiting for", "queued for", "ran for", "unparsed", "dataset", "student",
               "experiment", "worker", "attempt")
"""The runs table's columns, left to right: what a user watches (progress, ETA, accuracy) within the
first screen width, the rest after."""


def runs_frame(rows: list[dict], curve_points: list[dict], now: datetime | None = None,
               ends: dict[int, float] | None = None) -> pd.DataFrame:
    """One line per run (RUN_COLUMNS): status, progress, phase, ETA, accuracy and its warning, loss
    sparkline, throughput, why it waits, time queued and running. `ends` (the estimate's ends_s: run id
    → seconds until it ends, evaluation included, behind the queue for a queued run) gives the ETA;
    without one a running run shows its phase's own ETA."""
    now = now or datetime.now(timezone.utc)
    ends = ends or {}
    loss = defaultdict(list)
    for point in curve_points:
        loss[point["run_id"]].append(point["value"])
    lines = []
    for r in rows:
        fraction, phase = progress_of(r)
        p = r["progress"] or {}
        running = r["status"] == "running"
        queued_s, running_s = elapsed(r, now)
        own = p.get("eta_s") if p.get("phase") in (None, "train") else p.get("phase_eta_s")
        eta = ends.get(r["id"], own if running else None) if r["status"] in ("running", "queued") else None
        lines.append({
            "run": r["id"], "arm": r["arm"], "seed": r["seed"], "status": r["status"], "progress": fraction,
            "phase": phase, "ETA": format_duration(eta), "accuracy": r["accuracy"],
            "warning": flag_label(r["summary"]), "loss": loss.get(r["id"], []),
            "last loss": p.get("loss") if running else (loss[r["id"]][-1] if loss.get(r["id"]) else None),
            "tokens/s": p.get("tokens_per_s") or r["summary"].get("tokens_per_s"),
            "waiting for": r.get("waiting") or "", "queued for": format_duration(queued_s),
            "ran for": format_duration(running_s), "unparsed": r["summary"].get("unparsed_rate"),
            "dataset": r["dataset"], "student": r["student"], "experiment": r["experiment"],
            "worker": r["worker"] or "", "attempt": r["attempt"]})
    return pd.DataFrame(lines, columns=list(RUN_COLUMNS))


def runs_columns() -> dict:
    return {
        "run": st.column_config.NumberColumn("run", width="small"),
        "seed": st.column_config.NumberColumn("seed", width="small"),
        "status": st.column_config.TextColumn("status", width="small"),
        "progress": st.column_config.ProgressColumn("progress", min_value=0.0, max_value=1.0, format="percent",
                                                    width="small"),
        "ETA": st.column_config.TextColumn("ETA", width="small",
                                           help="until the run ends, its evaluation included; a queued run: "
                                                "behind the runs ahead of it"),
        "accuracy": st.column_config.NumberColumn(format="%.3f", width="small"),
        "warning": st.column_config.TextColumn("warning", width="small"),
        "loss": st.column_config.LineChartColumn("loss curve"),
        "last loss": st.column_config.NumberColumn(format="%.3f"),
        "tokens/s": st.column_config.NumberColumn(format="%.0f"),
        "unparsed": st.column_config.NumberColumn("unparsed", format="percent",
                                                  help="share of items whose generation gave no label"),
    }


def live_capacity(workers: list[dict], queue: str = "gpu") -> int:
    """Runs the live workers of `queue` take at once."""
    return sum(w["concurrency"] for w in workers if w["alive"] and queue in w["queues"])


def workers_line(workers: list[dict]) -> str:
    """'Workers: gpu0-host:12 (gpu), cpu-host:13 (cpu)' — the live ones, then how many went silent."""
    live = [w for w in workers if w["alive"]]
    gone = len(workers) - len(live)
    text = ("Workers: " + ", ".join(f"{md(w['name'])} ({md(', '.join(w['queues'])) or 'no queue'}"
                                    + (f", {w['concurrency']} at once" if w["concurrency"] > 1 else "") + ")"
                                    for w in live)) + "." if live else "No live worker."
    return text + (f" {gone} more went silent (no heartbeat)." if gone else "")


ESTIMATE_HOW = ("From the runs that finished on this system: the median training tokens/s of the same student, "
                "the tokens per step of the same arm (or of the same dataset, student and placement, scaled by "
                "the batch), plus their measured evaluation and start-up time. Before any such run has finished, "
                "from a calibration: a worker times a few training steps and test questions of the same settings "
                "on this machine. A running run counts its own ETA plus its evaluation. Every run queued or "
                "running ahead, of any experiment, counts: the runs are shared in order by the live workers of "
                "queue `gpu` (generation and attribution jobs are not counted).")


def estimate_text(est: dict, *, planned: bool = False) -> str | None:
    """The experiment's expected duration in one sentence (None when every run has finished). `planned`:
    the runs a matrix would add, before it is launched (behind every run already queued or running)."""
    n = est["runs_left"]
    if n == 0:
        return None
    runs = f"{n} new run{'s' if n != 1 else ''}" if planned else f"{n} run{'s' if n != 1 else ''} left, {est['running']} running"
    if est["unknown"]:                     # labels name datasets and students, which users name: escaped
        what = "; ".join(md(label) for label in est["unknown"])
        if est.get("measuring"):
            return (f"Expected duration: a worker is timing a few training steps and test questions of "
                    f"{'; '.join(md(label) for label in est['measuring'])} on this machine; the estimate "
                    f"follows ({runs}).")
        return (f"Expected duration: unknown until one run has finished or a worker of queue `cpu` has timed "
                f"this machine ({runs}; nothing measured yet for {what}).")
    ahead = est.get("ahead") or 0
    behind = "" if not ahead else (f", behind {ahead} run{'s' if ahead != 1 else ''} already queued or running"
                                   if planned else f", after {ahead} run{'s' if ahead != 1 else ''} of other "
                                                   f"experiments ahead of it")
    how = " (from a calibration of this machine)" if est.get("calibrated") else ""
    if est["remaining_s"] is None:
        return (f"Expected duration: about {format_duration(est['work_s'])} of work for one worker ({runs}), "
                f"but no worker is taking runs now.")
    workers = f"{est['workers']} worker{'s' if est['workers'] != 1 else ''}"
    if planned:
        return f"Expected duration: about {format_duration(est['remaining_s'])}{how} ({runs}, on {workers}{behind})."
    return f"Expected to finish in about {format_duration(est['remaining_s'])}{how} ({runs}, on {workers}{behind})."


def status_counts(rows: list[dict]) -> str:
    counts: dict[str, int] = defaultdict(int)
    for r in rows:
        counts[r["status"]] += 1
    order = ("running", "queued", "succeeded", "failed", "cancelled")
    return " · ".join(f"{counts[s]} {s}" for s in order if counts[s])


# ------------------------------------------------------------------------------------------ compare

def compare_frame(arms: list[dict], notes: dict[int, str] | None = None) -> pd.DataFrame:
    """The numbers behind the bars, one line per arm (what the CSV download holds), with how the arm
    was evaluated."""
    notes = notes or {}
    lines = []
    for a in arms:
        collapsed = a.get("collapsed") or [False] * len(a["runs"])
        lines.append({
            "dataset": a["dataset"], "student": a["student"], "placement": a["placement"],
            "perturbation": a["perturbation"], "arm": a["arm"], "evaluated": a.get("protocol") or "",
            "arm_key": a["arm_key"], "n_seeds": a["n_seeds"],
            "mean": a["mean"], "low": a["low"], "high": a["high"],
            "accuracies": " ".join(f"{x:.4f}" for x in a["accuracies"]),
            "seeds": " ".join(map(str, a["seeds"])), "runs": " ".join(map(str, a["runs"])),
            "collapsed_seeds": sum(collapsed),
            "unparsed": " ".join("-" if u is None else f"{u:.2f}" for u in a.get("unparsed_rates") or []),
            "warning": "; ".join([notes.get(r, "constant answer") for r, c in zip(a["runs"], collapsed) if c]
                                 + ([a["note"]] if a.get("note") else []))})
    return pd.DataFrame(lines)


def collapse_notes(rows: list[dict]) -> dict[int, str]:
    """Run id → its collapse warning, for runs whose summary says collapsed."""
    return {r["id"]: note for r in rows if (note := collapse_note(r["summary"]))}


# ------------------------------------------------------------------------------------------ examples

OUTCOMES = ("all examples", "wrong in every run", "the two runs disagree")
TEACHER = ("any", "teacher correct", "teacher incorrect")


def by_run(predictions: list[dict]) -> dict[int, dict[str, dict]]:
    """run id → example id → prediction."""
    table: dict[int, dict[str, dict]] = defaultdict(dict)
    for p in predictions:
        table[p["run_id"]][p["example_id"]] = p
    return table


def keep_example(example: dict, preds: dict[int, dict[str, dict]], *, outcome: str, teacher: str,
                 pair: tuple[int, int] | None = None) -> bool:
    """Whether an example passes the Examples page's filters (outcome across runs, teacher)."""
    if teacher == "teacher correct" and example.get("teacher_correct") is not True:
        return False
    if teacher == "teacher incorrect" and example.get("teacher_correct") is not False:
        return False
    mine = [run[example["id"]] for run in preds.values() if example["id"] in run]
    if outcome == "wrong in every run":
        return bool(mine) and not any(p["correct"] for p in mine)
    if outcome == "the two runs disagree" and pair:
        a, b = (preds.get(r, {}).get(example["id"]) for r in pair)
        return a is not None and b is not None and a["correct"] != b["correct"]
    return True


def examples_frame(examples: list[dict], preds: dict[int, dict[str, dict]], run_names: dict[int, str]) -> pd.DataFrame:
    """One line per example: question, gold, teacher, then each run's answer with ✓ / ✗."""
    lines = []
    for ex in examples:
        line = {"example": ex["id"], "question": ex["question"][:120], "gold": ex["label"],
                "teacher": {True: "✓", False: "✗"}.get(ex.get("teacher_correct"), "")}
        for run_id, name in run_names.items():
            p = preds.get(run_id, {}).get(ex["id"])
            line[name] = "" if p is None else f"{'✓' if p['correct'] else '✗'} {p['predicted']}"
        lines.append(line)
    return pd.DataFrame(lines)


def datasets_frame(infos: list[dict]) -> pd.DataFrame:
    """The datasets with their provenance: kind, description, examples and rationales per split."""
    return pd.DataFrame([{
        "dataset": i["name"], "kind": i["kind"] or "", "description": i["description"],
        "examples": ", ".join(f"{s} {n}" for s, n in i["counts"].items()),
        "with rationale": ", ".join(f"{s} {n}" for s, n in i["rationale_counts"].items()),
        "problem": i["error"] or ""} for i in infos])


# ------------------------------------------------------------------------------------------ rationale sets

def describe_decoding(decoding: dict | None) -> str:
    """'greedy, ≤256 tokens' or 'T=0.7, top-p 0.9, seed 1, ≤256 tokens'."""
    if not decoding:
        return ""
    d = decoding
    limit = f"≤{d['max_new_tokens']} tokens" if d.get("max_new_tokens") else ""
    if not d.get("temperature"):
        return ", ".join(p for p in ("greedy", limit) if p)
    return ", ".join(p for p in (f"T={d['temperature']:g}", f"top-p {d.get('top_p', 1.0):g}",
                                 f"seed {d.get('seed', 0)}", limit) if p)


def describe_teacher(teacher: dict | None) -> str:
    if not teacher:
        return ""
    where = teacher.get("url") or teacher.get("base_url") or ""
    return " ".join(p for p in (teacher.get("model", ""), f"({teacher.get('kind', '')}" +
                                (f" {where})" if where else ")")) if p.strip("()"))


def rationale_sets_frame(sets: list[dict]) -> pd.DataFrame:
    """The registered sets with their provenance, one line per set."""
    lines = []
    for s in sets:
        p = s["provenance"] or {}
        prompt = p.get("prompt") or {}
        lines.append({
            "set": s["id"], "name": s["name"], "dataset": s["dataset"], "source": p.get("source") or s["source"],
            "teacher": describe_teacher(p.get("teacher")),
            "prompt": (prompt.get("name") or "") + (" (rationalized)" if prompt.get("rationalize") else ""),
            "decoding": describe_decoding(p.get("decoding")),
            "gold-conditioned": {True: "yes", False: "no"}.get(p.get("gold_conditioned"), "unknown"),
            "created": (s["created_at"] or p.get("created_at") or "")[:19].replace("T", " "),
            "content hash": (s["content_hash"] or "")[:12],
            "examples": ", ".join(f"{k} {v}" for k, v in (p.get("splits") or {}).items()) or s["n_examples"],
            "teacher accuracy": s["teacher_accuracy"], "unparsed": s["n_unparsed"],
            "failed requests": p.get("n_errors"), "job": s["job_id"]})
    return pd.DataFrame(lines)


SET_NUMBERS = (("examples", "n"), ("with a rationale", "n_with_rationale"), ("teacher accuracy", "teacher_accuracy"),
               ("unparsed replies", "n_unparsed"), ("rationale words (mean)", "rationale_words_mean"),
               ("rationale words (median)", "rationale_words_median"))


def _number(value) -> str:
    if value is None:
        return "—"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def set_comparison_frame(result: dict) -> pd.DataFrame:
    """compare_rationale_sets' numbers of each set, A next to B."""
    lines = [{"measure": name, "A": _number(result["a"][key]), "B": _number(result["b"][key])}
             for name, key in SET_NUMBERS]
    lines.append({"measure": "teacher accuracy on the shared examples", "A": _number(result["accuracy_a_on_shared"]),
                  "B": _number(result["accuracy_b_on_shared"])})
    return pd.DataFrame(lines)


SET_OVERLAP = (("shared examples", "shared"), ("only in A", "only_a"), ("only in B", "only_b"),
               ("id overlap (Jaccard)", "id_jaccard"), ("gold labels that differ", "gold_mismatches"),
               ("answered by both teachers", "n_both_labelled"), ("teachers agree (share)", "teacher_agreement"),
               ("both right", "both_correct"), ("only A right", "only_a_correct"),
               ("only B right", "only_b_correct"), ("neither right", "neither_correct"))


def set_overlap_frame(result: dict) -> pd.DataFrame:
    """compare_rationale_sets' joint numbers: overlap of the examples and agreement on the shared ones."""
    return pd.DataFrame([{"measure": name, "value": _number(result[key])} for name, key in SET_OVERLAP])
