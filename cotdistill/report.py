"""The pure parts of an experiment report: multiple-comparison correction and the tables and figures
as text (LaTeX booktabs, Markdown, CSV, SVG). The data comes from worker/report.py; nothing here reads
a database or a file.

    holm([0.01, 0.04, 0.03])                  # [0.03, 0.06, 0.06]: Holm-adjusted p-values
    latex_table(rows, reference="none/none")  # a booktabs tabular, compiles as a fragment
    markdown_table(rows); csv_text(rows)      # the same numbers
    svg_bars(rows); svg_lines(series)         # static figures, written by hand (no browser needed)

A row is one arm in one panel (dataset, student): dataset, student, arm, n_seeds, mean, low, high
(None with one seed) and, against the panel's reference arm, diff, diff_low, diff_high, p_value,
p_holm, significant (None for the reference itself or where no comparison was possible).
"""

from __future__ import annotations

import csv
import io
import math
from html import escape as _xml
from typing import Sequence

ALPHA = 0.05
CSV_COLUMNS = ("dataset", "student", "arm", "placement", "perturbation", "n_seeds", "seeds", "mean", "low",
               "high", "reference", "diff", "diff_low", "diff_high", "p_value", "p_holm", "significant",
               "n_items", "seed_pairs", "flagged_runs")


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


def _panels(rows: Sequence[dict]) -> list[tuple[str, str]]:
    return list(dict.fromkeys((r["dataset"], r["student"]) for r in rows))


def _arms(rows: Sequence[dict]) -> list[str]:
    return list(dict.fromkeys(r["arm"] for r in rows))


def _cell(rows: Sequence[dict], arm: str, panel: tuple[str, str]) -> dict | None:
    return next((r for r in rows if r["arm"] == arm and (r["dataset"], r["student"]) == panel), None)


def _diff_text(row: dict | None, marker: str) -> str:
    if row is None or row.get("diff") is None:
        return "ref." if row is not None and row.get("is_reference") else "–"
    star = marker if row.get("significant") else ""
    return f"{interval_text(row['diff'], row['diff_low'], row['diff_high'], signed=True)} {_p_text(row['p_value'])}{star}"


def _p_text(p: float | None) -> str:
    """'p=0.0123' or 'p<0.001'."""
    text = fmt_p(p)
    return f"p{text}" if text.startswith("<") else f"p={text}"


# ------------------------------------------------------------------------------------------ rationales

def rationale_as_trained(rationale: str | None, example_id: str, *, placement: str, perturbation: dict,
                         seed: int) -> tuple[str | None, str]:
    """(text, how) of an item's rationale as an arm's training target would hold it: unchanged for
    perturbation `none`, the label alone for placement `none`, and for a word- or sentence-level
    perturbation that needs nothing beyond the rationale, `perturb` with the run's seed on the same
    units (cotdistill.perturbations.text_units), joined by spaces: exactly what the runner does before
    re-tokenising. Token-level, `mismatch` and `key_tokens` perturbations need the student's tokenizer,
    the training pool or the scores file: then text is None and `how` says so (`cotdistill preview`
    shows them)."""
    from cotdistill.perturbations import PerturbContext, perturb, text_units
    from cotdistill.placements import WORD_FILLER, WORD_MASK
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


def _latex_diff(row: dict | None) -> str:
    if row is None or row.get("diff") is None:
        return "ref." if row is not None and row.get("is_reference") else "--"
    star = "$^{*}$" if row.get("significant") else ""
    return f"{interval_text(row['diff'], row['diff_low'], row['diff_high'], signed=True)} (${_p_text(row['p_value'])}$){star}"


def latex_table(rows: Sequence[dict], *, caption_note: str = "") -> str:
    """A booktabs tabular (needs \\usepackage{booktabs}): one line per arm, per panel two columns,
    accuracy (mean [95% interval] over seeds) and the paired difference to the reference arm with its
    interval and p; $^{*}$ marks significance after the correction stated in `caption_note`."""
    panels, arms = _panels(rows), _arms(rows)
    spec = "l" + "ll" * len(panels)
    lines = [f"% {' '.join(caption_note.split())}" if caption_note else "% cotdistill report table",
             rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    heads = " & ".join(rf"\multicolumn{{2}}{{c}}{{{latex_escape(d)} / {latex_escape(s)}}}" for d, s in panels)
    lines.append(f"Arm & {heads} \\\\")
    lines.append(" ".join(rf"\cmidrule(lr){{{2 + 2 * i}-{3 + 2 * i}}}" for i in range(len(panels))))
    lines.append(" & " + " & ".join(r"Accuracy [95\% CI] & $\Delta$ vs ref. [95\% CI]" for _ in panels) + " \\\\")
    lines.append(r"\midrule")
    for arm in arms:
        cells = []
        for panel in panels:
            row = _cell(rows, arm, panel)
            cells.append(interval_text(row["mean"], row["low"], row["high"]) if row else "--")
            cells.append(_latex_diff(row))
        lines.append(f"{latex_escape(arm)} & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ Markdown, CSV

def markdown_table(rows: Sequence[dict]) -> str:
    """The same table in GitHub Markdown; * marks significance after the stated correction."""
    panels, arms = _panels(rows), _arms(rows)
    head = ["arm"] + [f"{d} / {s}: {what}" for d, s in panels for what in ("accuracy [95% CI]", "Δ vs ref. [95% CI]")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for arm in arms:
        cells = [arm.replace("|", "\\|")]
        for panel in panels:
            row = _cell(rows, arm, panel)
            cells += [interval_text(row["mean"], row["low"], row["high"]) if row else "–", _diff_text(row, "*")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def csv_text(rows: Sequence[dict]) -> str:
    """One line per (dataset, student, arm), numbers at full precision (Python's shortest round-trip
    repr), empty where not applicable."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: _csv_value(r.get(k)) for k in CSV_COLUMNS})
    return out.getvalue()


def _csv_value(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)


# ------------------------------------------------------------------------------------------ SVG

PALETTE = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880")


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="11">\n'
            f'<title>{_xml(title)}</title>\n<rect width="{width}" height="{height}" fill="white"/>\n'
            + "\n".join(body) + "\n</svg>\n")


def _y_axis(x0: float, y_of, lo: float, hi: float, ticks: int, label: str, top: float, bottom: float) -> list[str]:
    body = [f'<line x1="{x0}" y1="{top}" x2="{x0}" y2="{bottom}" stroke="#444"/>']
    for i in range(ticks + 1):
        v = lo + (hi - lo) * i / ticks
        y = y_of(v)
        body.append(f'<line x1="{x0 - 4}" y1="{y:.1f}" x2="{x0}" y2="{y:.1f}" stroke="#444"/>'
                    f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end">{v:.2f}</text>')
    mid = (top + bottom) / 2
    body.append(f'<text x="14" y="{mid:.1f}" transform="rotate(-90 14 {mid:.1f})" text-anchor="middle">'
                f'{_xml(label)}</text>')
    return body


def svg_bars(rows: Sequence[dict], title: str = "Test accuracy (mean over seeds, 95% interval)") -> str:
    """Bars of mean accuracy per arm with their interval as error bars, grouped by panel."""
    panels, arms = _panels(rows), _arms(rows)
    colours = {a: PALETTE[i % len(PALETTE)] for i, a in enumerate(arms)}
    bar_w, gap, left, top, plot_h = 26, 30, 60, 30, 260
    width = int(left + 20 + sum(len([r for r in rows if (r["dataset"], r["student"]) == p]) * bar_w + gap for p in panels)) + 200
    height = top + plot_h + 60
    y_of = lambda v: top + plot_h * (1 - v)                          # accuracy in [0, 1]
    body = [f'<text x="{left}" y="18" font-size="13">{_xml(title)}</text>']
    body += _y_axis(left, y_of, 0.0, 1.0, 5, "test accuracy", top, top + plot_h)
    x = left + 12
    for panel in panels:
        mine = [r for r in rows if (r["dataset"], r["student"]) == panel]
        start = x
        for r in mine:
            h = plot_h * r["mean"]
            body.append(f'<rect x="{x}" y="{y_of(r["mean"]):.1f}" width="{bar_w - 4}" height="{h:.1f}" '
                        f'fill="{colours[r["arm"]]}"><title>{_xml(r["arm"])}: {fmt(r["mean"])}</title></rect>')
            if r.get("low") is not None and r.get("high") is not None:
                cx = x + (bar_w - 4) / 2
                body.append(f'<line x1="{cx}" y1="{y_of(r["low"]):.1f}" x2="{cx}" y2="{y_of(r["high"]):.1f}" stroke="#222"/>')
            x += bar_w
        body.append(f'<text x="{(start + x) / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle">'
                    f'{_xml(panel[0])} / {_xml(panel[1])}</text>')
        x += gap
    for i, arm in enumerate(arms):                                   # legend
        y = top + 14 * i
        body.append(f'<rect x="{x + 10}" y="{y}" width="10" height="10" fill="{colours[arm]}"/>'
                    f'<text x="{x + 26}" y="{y + 9}">{_xml(arm)}</text>')
    return _svg(width, height, body, title)


def svg_lines(series: Sequence[dict], *, title: str, x_label: str, y_label: str) -> str:
    """Lines of (x, y) points: series = [{name, x: [...], y: [...]}]; axes fitted to the data."""
    xs = [v for s in series for v in s["x"]] or [0, 1]
    ys = [v for s in series for v in s["y"]] or [0, 1]
    x_lo, x_hi = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y_lo, y_hi = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1
    left, top, plot_w, plot_h = 60, 30, 480, 260
    x_of = lambda v: left + plot_w * (v - x_lo) / (x_hi - x_lo)
    y_of = lambda v: top + plot_h * (1 - (v - y_lo) / (y_hi - y_lo))
    body = [f'<text x="{left}" y="18" font-size="13">{_xml(title)}</text>']
    body += _y_axis(left, y_of, y_lo, y_hi, 5, y_label, top, top + plot_h)
    body.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#444"/>')
    for i in range(6):
        v = x_lo + (x_hi - x_lo) * i / 5
        body.append(f'<text x="{x_of(v):.1f}" y="{top + plot_h + 14}" text-anchor="middle">{v:g}</text>')
    body.append(f'<text x="{left + plot_w / 2}" y="{top + plot_h + 32}" text-anchor="middle">{_xml(x_label)}</text>')
    for i, s in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        points = " ".join(f"{x_of(x):.1f},{y_of(y):.1f}" for x, y in zip(s["x"], s["y"]))
        body.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.5">'
                    f'<title>{_xml(s["name"])}</title></polyline>')
        body.append(f'<text x="{left + plot_w + 10}" y="{top + 12 * i + 9}" fill="{colour}">{_xml(s["name"])}</text>')
    return _svg(left + plot_w + 260, top + plot_h + 50, body, title)
