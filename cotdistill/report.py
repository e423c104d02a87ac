"""The pure parts of an experiment report: multiple-comparison correction, the tables as text (LaTeX
booktabs, Markdown, CSV) and the figures (matplotlib, PDF and SVG). The data comes from
worker/report.py; nothing here reads a database or a file.

    holm([0.01, 0.04, 0.03])                  # [0.03, 0.06, 0.06]: Holm-adjusted p-values
    latex_table(rows, caption_note=...)       # a booktabs tabular, compiles as a fragment
    markdown_table(rows); csv_text(rows)      # the same numbers
    verdict_lines(rows)                       # the verdicts in plain text (the CLI prints them)
    save(bar_figure(rows))                    # {"pdf": b"%PDF…", "svg": b"<?xml…"}

A row is one arm in one panel (dataset, student) as worker.api.verdicts makes it: arm (label), row_key,
protocol, n_seeds, mean, low, high (None with one seed), flags, and against the panel's reference arm
the procedure-level difference (seeds as the unit: diff, diff_low, diff_high, p_value, p_holm,
significant, verdict; no interval or p with one seed pair) and the test-set statistics (these trained
models, on these items: test_low, test_high, test_p, test_p_holm). Tables are keyed by row_key, so two
arms never merge into one line.
"""

from __future__ import annotations

import csv
import io
import math
from typing import Sequence

from cotdistill.stats.inference import NEEDS_SEEDS

ALPHA = 0.05
CSV_COLUMNS = ("dataset", "student", "arm", "arm_key", "placement", "perturbation", "protocol", "n_seeds", "seeds",
               "mean", "low", "high", "reference", "diff", "diff_low", "diff_high", "p_value", "p_holm",
               "significant", "verdict", "seed_pairs", "detectable", "seeds_for_target", "sign_flip_floor", "test_low", "test_high",
               "test_p", "test_p_holm", "n_items", "flagged_runs", "flags", "basis_warning", "note")
FLAGS = (("collapsed", "collapse_reason", "not distinguishable from a constant answer", "constant answer"),
         ("below_baseline", "below_baseline_reason", "significantly below the majority baseline",
          "below the majority baseline"),
         ("high_unparsed", "unparsed_reason", "mostly unparsed generations", "mostly unparsed"))
"""(summary flag, its reason's key, what it means, its short name in tables)."""
FLAGGED = "†"
CONSTANT_PAIR = "‡"


# ------------------------------------------------------------------------------------------ correction

def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in input order: the i-th smallest p times (m - i + 1),
    made monotone and capped at 1. Rejecting where adjusted p < alpha controls the family-wise error
    rate at alpha over all m comparisons, with no assumption on their dependence."""
    m = len(p_values)
    for i, p in enumerate(p_values):
        if not (isinstance(p, (int, float)) and 0 <= p <= 1):
            raise ValueError(f"p-value {i} is {p!r}; p-values must be numbers between 0 and 1")
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


# ------------------------------------------------------------------------------------------ numbers as text

def fmt(value: float | None, digits: int = 3, signed: bool = False) -> str:
    """A number at `digits` decimals ('–' for None or NaN); `signed` writes a leading + for positives.
    A negative value keeps its sign even when it rounds to zero (-0.000): an interval's bound just
    below zero must not read as one above it."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def fmt_p(p: float | None) -> str:
    """A p-value at three significant digits, '<0.001' below a thousandth."""
    if p is None:
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3g}"


def interval_text(mean: float | None, low: float | None, high: float | None, signed: bool = False) -> str:
    """'0.612 [0.581, 0.640]', or the mean alone when there is no interval (one seed)."""
    if low is None or high is None:
        return fmt(mean, signed=signed)
    return f"{fmt(mean, signed=signed)} [{fmt(low, signed=signed)}, {fmt(high, signed=signed)}]"



# ------------------------------------------------------------------------------------------ flags

def flag_messages(summary: dict) -> list[str]:
    """One message per flag a run raised (constant answer, below baseline, mostly unparsed): the
    reason when it already says what the flag means, else 'what: reason', or 'what' alone."""
    out = []
    for flag, why, what, _ in FLAGS:
        if not summary.get(flag):
            continue
        reason = summary.get(why) or ""
        out.append(reason if what in reason else f"{what}: {reason}" if reason else what)
    return out


def flag_names(messages: Sequence[str]) -> list[str]:
    """The short names ('constant answer', …) of flag messages made by `flag_messages`."""
    return [short for _, _, what, short in FLAGS if any(what in m for m in messages)]



# ------------------------------------------------------------------------------------------ table cells

def _panels(rows: Sequence[dict]) -> list[tuple[str, str]]:
    return list(dict.fromkeys((r["dataset"], r["student"]) for r in rows))


def _row_key(row: dict) -> str:
    return row.get("row_key") or row["arm"]


def _lines(rows: Sequence[dict]) -> list[tuple[str, str]]:
    """(row key, label) of the table's lines, in the rows' order."""
    return list(dict.fromkeys((_row_key(r), r["arm"]) for r in rows))


def _cell(rows: Sequence[dict], key: str, panel: tuple[str, str]) -> dict | None:
    return next((r for r in rows if _row_key(r) == key and (r["dataset"], r["student"]) == panel), None)


def _p_text(p: float | None) -> str:
    """'p=0.0123' or 'p<0.001'."""
    text = fmt_p(p)
    return f"p{text}" if text.startswith("<") else f"p={text}"


def accuracy_text(row: dict | None, flagged: str = FLAGGED) -> str:
    """'0.612 [0.581, 0.640]', marked when a seed of the arm is flagged."""
    if row is None:
        return "–"
    return interval_text(row["mean"], row["low"], row["high"]) + (flagged if row.get("flagged_runs") else "")


PLAIN = {"star": "*", "constant": CONSTANT_PAIR, "needs": NEEDS_SEEDS, "missing": "–", "p": "{}"}
LATEX = {"star": r"$^{*}$", "constant": r"$^{\ddagger}$", "needs": r"needs $\geq$ 2 seeds", "missing": "--",
         "p": "(${}$)"}
"""How the table cells write their marks, as text and as LaTeX."""


def diff_text(row: dict | None, style: dict = PLAIN) -> str:
    """The procedure-level difference to the reference: '+0.125 [-0.010, +0.260] p=0.0312*' (star:
    significant after Holm), '+0.125, needs ≥ 2 seeds' with one seed pair, 'ref.' for the reference;
    ‡ marks a pair where both arms answer a constant label."""
    if row is not None and row.get("is_reference"):
        return "ref."
    if row is None or row.get("diff") is None:
        return style["missing"]
    mark = style["constant"] if row.get("basis_warning") else ""
    if row.get("p_value") is None:
        return f"{fmt(row['diff'], signed=True)}, {style['needs']}{mark}"
    return (f"{interval_text(row['diff'], row['diff_low'], row['diff_high'], signed=True)} "
            f"{style['p'].format(_p_text(row['p_value']))}{style['star'] if row.get('significant') else ''}{mark}")


def test_set_text(row: dict | None, style: dict = PLAIN) -> str:
    """The test-set interval and p (these trained models, on these items): '[-0.010, +0.260] p=0.004'."""
    if row is None or row.get("test_p") is None:
        return "ref." if row is not None and row.get("is_reference") else style["missing"]
    return (f"[{fmt(row['test_low'], signed=True)}, {fmt(row['test_high'], signed=True)}] "
            f"{style['p'].format(_p_text(row['test_p']))}")


def _protocols(rows: Sequence[dict], key: str) -> str:
    return ", ".join(dict.fromkeys(r.get("protocol") or "–" for r in rows if _row_key(r) == key))


def notes(rows: Sequence[dict]) -> list[str]:
    """The table's footnotes: flagged arms (one line per arm, one name per flag) and pairs that both
    answer a constant label; none when nothing is flagged."""
    out = []
    for r in rows:
        where = f"{r['arm']} ({r['dataset']} / {r['student']})"
        if r.get("flagged_runs"):
            names = ", ".join(r.get("flags") or []) or "flagged"
            out.append(f"{FLAGGED} {where}: {len(r['flagged_runs'])} of {r['n_seeds']} seed(s) flagged ({names}); "
                       f"their accuracy says little about what they learned.")
        if r.get("basis_warning"):
            out.append(f"{CONSTANT_PAIR} {where} vs {r['reference']}: both arms answer a constant label, so the "
                       f"interval measures the label bias, not the arms (not evidence of no difference).")
        if r.get("note"):
            out.append(f"{where}: {r['note']}.")
    return list(dict.fromkeys(out))


# ------------------------------------------------------------------------------------------ rationales

def rationale_as_trained(rationale: str | None, example_id: str, *, placement: str, perturbation: dict,
                         seed: int) -> tuple[str | None, str]:
    """(text, how) of an item's rationale as an arm's training target would hold it: unchanged for
    perturbation `none`, the label alone for placement `none`, and for a word- or sentence-level
    perturbation that needs nothing beyond the rationale, `perturb` with the run's seed on the same
    units (cotdistill.sequences.perturbations.text_units), joined by spaces: exactly what the runner does before
    re-tokenising. Token-level, `mismatch` and `key_tokens` perturbations need the student's tokenizer,
    the training pool or the scores file: then text is None and `how` says so (`cotdistill preview`
    shows them)."""
    from cotdistill.sequences.perturbations import PerturbContext, perturb, text_units
    from cotdistill.sequences.placements import WORD_FILLER, WORD_MASK
    kind = perturbation.get("kind", "none")
    if placement == "none":
        return None, "placement none: trained on the label alone"
    if not rationale:
        return None, "no rationale"
    if kind == "none":
        return rationale, "unchanged"
    level = perturbation.get("level", "token")
    if level not in ("word", "sentence") or kind in ("mismatch", "key_tokens"):
        return None, (f"{kind} at {level} level: needs the student's tokenizer, "
                      f"training pool or scores (see `cotdistill preview`)")
    units = perturb(kind, text_units(rationale.strip(), level), seed=seed, example_id=example_id,
                    params=perturbation.get("params") or {},
                    context=PerturbContext(mask_unit=WORD_MASK, filler_unit=WORD_FILLER))
    return " ".join(units), f"{kind} at {level} level, seed {seed}"


# ------------------------------------------------------------------------------------------ LaTeX

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def _latex(text: str) -> str:
    """A note's text in LaTeX: escaped, the table's marks as math."""
    out = latex_escape(text)
    for plain, math_ in (("≥", r"$\geq$"), (FLAGGED, r"$^{\dagger}$"), (CONSTANT_PAIR, r"$^{\ddagger}$")):
        out = out.replace(plain, math_)
    return out


def _latex_accuracy(row: dict | None) -> str:
    return "--" if row is None else accuracy_text(row, flagged=r"$^{\dagger}$")


def latex_table(rows: Sequence[dict], *, caption_note: str = "") -> str:
    """A booktabs tabular (needs \\usepackage{booktabs}): one line per arm (keyed by row key), the
    evaluation protocol, and per panel three columns: accuracy (mean [95% interval] over seeds), the
    procedure-level difference to the reference arm (seeds as the unit; $^{*}$: significant after the
    correction stated in `caption_note`) and the test-set interval and p (these models, these items).
    Flags and constant-answer pairs are marked and explained in footnote lines under the table."""
    panels, lines_ = _panels(rows), _lines(rows)
    width = 2 + 3 * len(panels)
    spec = "ll" + "lll" * len(panels)
    lines = [f"% {' '.join(caption_note.split())}" if caption_note else "% cotdistill report table",
             rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    heads = " & ".join(rf"\multicolumn{{3}}{{c}}{{{latex_escape(d)} / {latex_escape(s)}}}" for d, s in panels)
    lines.append(f"Arm & Evaluated & {heads} \\\\")
    lines.append(" ".join(rf"\cmidrule(lr){{{3 + 3 * i}-{5 + 3 * i}}}" for i in range(len(panels))))
    lines.append(" & & " + " & ".join(r"Accuracy [95\% CI] & $\Delta$ vs ref. [95\% CI], seeds & Test set [95\% CI]"
                                      for _ in panels) + " \\\\")
    lines.append(r"\midrule")
    for key, label in lines_:
        cells = []
        for panel in panels:
            row = _cell(rows, key, panel)
            cells += [_latex_accuracy(row), diff_text(row, LATEX), test_set_text(row, LATEX)]
        lines.append(f"{latex_escape(label)} & {latex_escape(_protocols(rows, key))} & " + " & ".join(cells) + r" \\")
    lines.append(r"\bottomrule")
    for note in notes(rows):
        lines.append(rf"\multicolumn{{{width}}}{{l}}{{\footnotesize {_latex(note)}}} \\")
    lines.append(r"\end{tabular}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ Markdown, CSV, text

def markdown_table(rows: Sequence[dict]) -> str:
    """The same table in GitHub Markdown, its footnotes under it; * marks significance after the
    stated correction."""
    panels = _panels(rows)
    head = ["arm", "evaluated"] + [f"{d} / {s}: {what}" for d, s in panels
                                   for what in ("accuracy [95% CI]", "Δ vs ref. [95% CI], seeds", "test set [95% CI]")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, label in _lines(rows):
        cells = [label.replace("|", "\\|"), _protocols(rows, key)]
        for panel in panels:
            row = _cell(rows, key, panel)
            cells += [accuracy_text(row), diff_text(row), test_set_text(row)]
        lines.append("| " + " | ".join(cells) + " |")
    extra = notes(rows)
    return "\n".join(lines + ([""] + extra if extra else [])) + "\n"


def csv_text(rows: Sequence[dict]) -> str:
    """One line per (dataset, student, arm), numbers at full precision (Python's shortest round-trip
    repr), empty where not applicable."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        line = {k: _csv_value(r.get(k)) for k in CSV_COLUMNS}
        line["flags"] = "; ".join(r.get("flags") or [])
        writer.writerow(line)
    return out.getvalue()


def _csv_value(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


def verdict_lines(rows: Sequence[dict]) -> list[str]:
    """Each comparison in one line of plain text, the procedure first, then the test set."""
    out = []
    for r in rows:
        if r.get("is_reference") or r.get("reference") is None:
            continue
        head = f"{r['arm']} vs {r['reference']} ({r['dataset']} / {r['student']}): "
        if r.get("diff") is None:
            out.append(head + (r.get("comparison_error") or "not compared"))
            continue
        if r.get("p_value") is None:
            verdict = f"{fmt(r['diff'], signed=True)}, {NEEDS_SEEDS} (1 seed pair)"
        else:
            verdict = (f"{interval_text(r['diff'], r['diff_low'], r['diff_high'], signed=True)}, p={fmt_p(r['p_value'])}"
                       f" over {r['seed_pairs']} seed pairs, Holm p={fmt_p(r['p_holm'])}: {r['verdict']}")
        out.append(head + verdict + f"; test set (these models, these items): {test_set_text(r)}"
                   + (f" {CONSTANT_PAIR} both answer a constant label" if r.get("basis_warning") else ""))
    return out


# ------------------------------------------------------------------------------------------ figures (matplotlib)

COLOURS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974",
           "#64b5cd")


def _figure(width: float, height: float, ncols: int = 1):
    """A matplotlib Figure (no pyplot, no global backend: the Agg canvas draws it) and its axes."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def colours(names: Sequence[str]) -> dict[str, str]:
    """One colour per name, in order (the palette repeats after ten)."""
    return {n: COLOURS[i % len(COLOURS)] for i, n in enumerate(dict.fromkeys(names))}


def bar_figure(rows: Sequence[dict], title: str = "Test accuracy (mean over seeds, 95% interval over seeds)"):
    """Bars of mean accuracy per arm, one panel per (dataset, student): the 95% interval over seeds as
    error bars, one dot per seed, the mean written at the top of each bar; a flagged arm's bar is hatched and its
    name marked †."""
    panels = _panels(rows)
    palette = colours([_row_key(r) for r in rows])
    n_bars = max(len([r for r in rows if (r["dataset"], r["student"]) == p]) for p in panels) if panels else 1
    fig, axes = _figure(max(4.0, 1.2 + 0.9 * n_bars) * len(panels), 4.2, max(len(panels), 1))
    for ax, panel in zip(axes, panels):
        mine = [r for r in rows if (r["dataset"], r["student"]) == panel]
        x = list(range(len(mine)))
        lower = [r["mean"] - r["low"] if r.get("low") is not None else 0 for r in mine]
        upper = [r["high"] - r["mean"] if r.get("high") is not None else 0 for r in mine]
        bars = ax.bar(x, [r["mean"] for r in mine], color=[palette[_row_key(r)] for r in mine],
                      hatch=None, yerr=[lower, upper], capsize=3, ecolor="#222222", width=0.7)
        for bar, r in zip(bars, mine):
            if r.get("flagged_runs"):
                bar.set_hatch("//")
        for i, r in enumerate(mine):           # the mean inside the bar's top (above a bar too short for it)
            inside = r["mean"] >= 0.1
            ax.text(i + 0.33, r["mean"] - 0.015 if inside else r["mean"] + 0.015, fmt(r["mean"]), ha="right",
                    va="top" if inside else "bottom", fontsize=7, color="white" if inside else "black")
        for i, r in enumerate(mine):
            ax.scatter([i] * len(r["accuracies"]), r["accuracies"], s=12, color="black", zorder=3)
        ax.set_xticks(x, [r["arm"] + (FLAGGED if r.get("flagged_runs") else "") for r in mine], rotation=30,
                      ha="right", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
        ax.set_ylabel("test accuracy")
        ax.set_title(f"{panel[0]} / {panel[1]}", fontsize=10)
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle(title, fontsize=10)
    return fig


def line_figure(series: Sequence[dict], *, title: str, x_label: str, y_label: str):
    """Lines of series [{name, group, x, y}]: one colour and one legend entry per group (an arm),
    several lines per group (its seeds); axes with matplotlib's round ticks."""
    fig, (ax,) = _figure(6.4, 3.8)
    palette = colours([s.get("group", s["name"]) for s in series])
    shown = set()
    for s in series:
        group = s.get("group", s["name"])
        ax.plot(s["x"], s["y"], color=palette[group], linewidth=1.2, marker="o" if len(s["x"]) < 12 else None,
                markersize=3, label=None if group in shown else group)
        shown.add(group)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(title, fontsize=10)
    ax.spines[["top", "right"]].set_visible(False)
    if shown:
        ax.legend(fontsize=8, frameon=False)
    return fig


def save(fig) -> dict[str, bytes]:
    """The figure as vector PDF and SVG (text kept as text in the SVG; no dates, so the same figure
    gives the same files)."""
    import matplotlib
    out = {}
    with matplotlib.rc_context({"svg.hashsalt": "cotdistill", "svg.fonttype": "none", "pdf.fonttype": 42}):
        for kind, metadata in (("pdf", {"CreationDate": None}), ("svg", {"Date": None})):
            buffer = io.BytesIO()
            fig.savefig(buffer, format=kind, metadata=metadata)
            out[kind] = buffer.getvalue()
    return out
