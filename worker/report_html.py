"""The report as one self-contained HTML page (Plotly embedded once, no network) and its figures as
static vector files (matplotlib, through cotdistill/report.py; no browser needed). Input:
worker.report.build's data.

    html = html_page(report)       # str, opens offline
    files = figures(report)        # {"accuracy": {"pdf": b"…", "svg": b"…"}, "label_loss": …, "accuracy_vs_k": …}
"""

from __future__ import annotations

import json
from collections import defaultdict
from html import escape

import plotly.graph_objects as go
import yaml
from plotly.subplots import make_subplots

from cotdistill import report as fmt

K_SERIES = {"key_tokens": "key tokens (top k)", "random_subset": "random k (control)"}
REFERENCE_LINES = {("after", "none"): "full rationale (after)", ("none", "none"): "label only"}


# ------------------------------------------------------------------------------------------ figure data

def k_points(rows: list[dict]) -> list[dict]:
    """Key-token study points: arms after the label keeping k rationale units (key tokens, random
    control), and the references (full rationale after, label only) with k None."""
    points = []
    for r in rows:
        params = r.get("perturbation_params") or {}
        if r["placement"] == "after" and r["perturbation"] in K_SERIES and params.get("k") is not None:
            points.append({**r, "series": K_SERIES[r["perturbation"]], "k": float(params["k"])})
        elif (r["placement"], r["perturbation"]) in REFERENCE_LINES and not r.get("untouched"):
            points.append({**r, "series": REFERENCE_LINES[(r["placement"], r["perturbation"])], "k": None})
    return points


def curve_series(report: dict) -> list[dict]:
    """The label-loss curve of each run: {name, group (its arm), x (steps), y}."""
    runs = {r["id"]: r for r in report["runs"]}
    by_run = defaultdict(lambda: {"x": [], "y": []})
    for p in report["curves"]:
        by_run[p["run_id"]]["x"].append(p["step"])
        by_run[p["run_id"]]["y"].append(p["value"])
    out = []
    for i, v in sorted(by_run.items()):
        r = runs.get(i, {"arm": str(i), "seed": "?", "dataset": "", "student": ""})
        group = r["arm"] if len({(x["dataset"], x["student"]) for x in runs.values()}) <= 1 else \
            f"{r['dataset']} / {r['student']}: {r['arm']}"
        out.append({"name": f"{r['arm']} s{r['seed']} #{i}", "group": group, **v})
    return out


LABEL_LOSS = "label loss (per label token; the same tokens for every placement)"


def figures(report: dict) -> dict[str, dict[str, bytes]]:
    """Each static figure as vector PDF and SVG (the same data as the page's interactive ones)."""
    out = {"accuracy": fmt.save(fmt.bar_figure(report["rows"]))}
    if report["curves"]:
        out["label_loss"] = fmt.save(fmt.line_figure(curve_series(report), title="Label loss during training "
                                                     "(one colour per arm, one line per seed)",
                                                     x_label="step", y_label="label loss"))
    with_k = [p for p in k_points(report["rows"]) if p["k"] is not None]
    if with_k:
        series = defaultdict(lambda: {"x": [], "y": []})
        for p in sorted(with_k, key=lambda p: p["k"]):
            name = f"{p['dataset']} / {p['student']}: {p['series']}"
            series[name]["x"].append(p["k"])
            series[name]["y"].append(p["mean"])
        out["accuracy_vs_k"] = fmt.save(fmt.line_figure([{"name": n, **v} for n, v in series.items()],
                                                        title="Test accuracy against k (key-token study)",
                                                        x_label="k (rationale units kept after the label)",
                                                        y_label="test accuracy"))
    return out


# ------------------------------------------------------------------------------------------ Plotly figures

def accuracy_figure(rows: list[dict]) -> go.Figure:
    """Bars: mean accuracy per arm with its 95% interval over seeds; dots: the seeds. One panel per
    (dataset, student)."""
    panels = list(dict.fromkeys((r["dataset"], r["student"]) for r in rows))
    fig = make_subplots(rows=len(panels), cols=1, subplot_titles=[f"{d} / {s}" for d, s in panels],
                        vertical_spacing=0.15)
    for i, panel in enumerate(panels, start=1):
        mine = [r for r in rows if (r["dataset"], r["student"]) == panel]
        error = dict(type="data", symmetric=False, array=[(r["high"] - r["mean"]) if r["high"] is not None else 0 for r in mine],
                     arrayminus=[(r["mean"] - r["low"]) if r["low"] is not None else 0 for r in mine])
        fig.add_trace(go.Bar(x=[r["arm"] for r in mine], y=[r["mean"] for r in mine], error_y=error,
                             name="mean over seeds", showlegend=i == 1, marker_color=fmt.COLOURS[0]), row=i, col=1)
        fig.add_trace(go.Scatter(x=[r["arm"] for r in mine for _ in r["accuracies"]],
                                 y=[a for r in mine for a in r["accuracies"]], mode="markers", name="seed",
                                 showlegend=i == 1, marker=dict(color="black", size=7)), row=i, col=1)
        fig.update_yaxes(title_text="test accuracy", range=[0, 1.05], row=i, col=1)
    fig.update_layout(height=360 * len(panels), margin=dict(t=40, b=40))
    return fig


def difference_figure(rows: list[dict]) -> go.Figure:
    """Each arm minus its reference, the training procedure (seeds as the unit): the 95% interval over
    seed pairs; filled markers where significant after Holm's correction; an arm with one seed pair
    has no interval (needs ≥ 2 seeds)."""
    compared = [r for r in rows if r.get("diff") is not None]
    labels = [f"{r['dataset']} / {r['student']}: {r['arm']}" for r in compared]
    fig = go.Figure(go.Scatter(
        x=[r["diff"] for r in compared], y=labels, mode="markers",
        error_x=dict(type="data", symmetric=False,
                     array=[r["diff_high"] - r["diff"] if r["diff_high"] is not None else 0 for r in compared],
                     arrayminus=[r["diff"] - r["diff_low"] if r["diff_low"] is not None else 0 for r in compared]),
        marker=dict(size=10, color=fmt.COLOURS[3], symbol=["circle" if r.get("significant") else "circle-open"
                                                           for r in compared]),
        text=[f"p={fmt.fmt_p(r['p_value'])}, Holm {fmt.fmt_p(r['p_holm'])}" if r["p_value"] is not None
              else fmt.NEEDS_SEEDS for r in compared],
        hovertemplate="%{y}<br>Δ %{x:+.3f}<br>%{text}<extra></extra>", name="Δ vs reference"))
    fig.add_vline(x=0, line=dict(color="#444", dash="dot"))
    fig.update_layout(xaxis_title="accuracy difference to the reference arm (mean over seed pairs, 95% interval "
                                  "over seed pairs)", height=120 + 40 * len(compared), margin=dict(t=30, b=40, l=260))
    return fig


def curves_figure(report: dict) -> go.Figure:
    """Label loss, one line per run, one colour (and legend entry) per arm."""
    series = curve_series(report)
    palette = fmt.colours([s["group"] for s in series])
    fig, shown = go.Figure(), set()
    for s in series:
        fig.add_trace(go.Scatter(x=s["x"], y=s["y"], mode="lines", name=s["group"], legendgroup=s["group"],
                                 showlegend=s["group"] not in shown, line=dict(color=palette[s["group"]]),
                                 hovertemplate=f"{escape(s['name'])}<br>step %{{x}}: %{{y:.4f}}<extra></extra>"))
        shown.add(s["group"])
    fig.update_layout(xaxis_title="step", yaxis_title=LABEL_LOSS, height=380, margin=dict(t=30, b=40))
    return fig


def k_figure(rows: list[dict]) -> go.Figure | None:
    points = k_points(rows)
    if not any(p["k"] is not None for p in points):
        return None
    fig = go.Figure()
    ks = sorted({p["k"] for p in points if p["k"] is not None})
    for (dataset, student, series) in dict.fromkeys((p["dataset"], p["student"], p["series"]) for p in points):
        line = sorted((p for p in points if (p["dataset"], p["student"], p["series"]) == (dataset, student, series)),
                      key=lambda p: p["k"] or 0)
        name = f"{dataset} / {student}: {series}"
        if line[0]["k"] is None:                 # a reference: a horizontal line across the k range
            fig.add_trace(go.Scatter(x=[ks[0], ks[-1]], y=[line[0]["mean"]] * 2, mode="lines", name=name,
                                     line=dict(dash="dash")))
            continue
        fig.add_trace(go.Scatter(
            x=[p["k"] for p in line], y=[p["mean"] for p in line], mode="lines+markers", name=name,
            error_y=dict(type="data", symmetric=False, array=[(p["high"] or p["mean"]) - p["mean"] for p in line],
                         arrayminus=[p["mean"] - (p["low"] or p["mean"]) for p in line])))
    fig.update_layout(xaxis_title="k (rationale units kept after the label)", yaxis_title="test accuracy",
                      yaxis_range=[0, 1.05], height=400, margin=dict(t=30, b=40))
    return fig


# ------------------------------------------------------------------------------------------ the page

STYLE = """body{font-family:Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}th,td{border-bottom:1px solid #ddd;padding:4px 8px;
text-align:left;vertical-align:top}th{border-bottom:2px solid #444}pre{background:#f6f6f6;padding:8px;overflow:auto;
font-size:12px}.warn{color:#b45309}.sig{font-weight:bold}.small{font-size:12px;color:#555}"""


def _table(head: list[str], body: list[list[str]]) -> str:
    """An HTML table; cells are already escaped HTML."""
    return ("<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in line) + "</tr>" for line in body) + "</table>")


def _accuracy_table(report: dict) -> str:
    """One line per arm and panel: accuracy over seeds, how it was evaluated, then against the reference
    the procedure-level verdict with its seed budget, then the test-set statistics."""
    head = ["dataset / student", "arm", "evaluated", "accuracy [95% CI]", "seeds", "Δ vs ref. [95% CI], seeds",
            "p", "Holm p", "verdict", "seed budget", "test set [95% CI]", "test-set p"]
    body = []
    for r in report["rows"]:
        flag = (f' <span class="warn" title="{escape("; ".join(r.get("flags") or []))}">{fmt.FLAGGED}</span>'
                if r.get("flagged_runs") else "")
        line = [escape(f"{r['dataset']} / {r['student']}"), escape(r["arm"]),
                escape(r.get("protocol") or "–") + (f'<br><span class="small">{escape(r["note"])}</span>'
                                                    if r.get("note") else ""),
                escape(fmt.interval_text(r["mean"], r["low"], r["high"])) + flag, str(r["n_seeds"])]
        if r.get("diff") is None:
            line += ["reference" if r["is_reference"] else escape(r.get("comparison_error", "–"))] + [""] * 6
        else:
            sig = ' class="sig"' if r.get("significant") else ""
            constant = (f' <span class="warn" title="{escape(r["basis_warning"])}">{fmt.CONSTANT_PAIR}</span>'
                        if r.get("basis_warning") else "")
            diff = (fmt.interval_text(r["diff"], r["diff_low"], r["diff_high"], signed=True) if r["p_value"] is not None
                    else f"{fmt.fmt(r['diff'], signed=True)}, {fmt.NEEDS_SEEDS}")
            line += [f"<span{sig}>{escape(diff)}{'*' if r.get('significant') else ''}</span>{constant}",
                     escape(fmt.fmt_p(r["p_value"])), escape(fmt.fmt_p(r["p_holm"])), escape(r["verdict"]),
                     escape(budget_text(r)),
                     escape(f"[{fmt.fmt(r['test_low'], signed=True)}, {fmt.fmt(r['test_high'], signed=True)}]"),
                     escape(fmt.fmt_p(r["test_p"]))]
        body.append(line)
    notes = "".join(f"<li>{escape(n)}</li>" for n in fmt.notes(report["rows"]))
    return _table(head, body) + (f"<ul class='small'>{notes}</ul>" if notes else "")


def budget_text(row: dict) -> str:
    """The seed budget of a comparison in words."""
    floor = f"a sign-flip test over {row['seed_pairs']} seed pair(s) cannot go below p = {row['sign_flip_floor']:.3g}"
    if row.get("detectable") is None:
        return f"no seed-to-seed spread to plan with ({row['seed_pairs']} seed pair(s)); {floor}"
    need = (f"{row['seeds_for_target']} seed pairs for the observed {abs(row['diff']):.3f}"
            if row.get("seeds_for_target") else f"more than 200 seed pairs for the observed {abs(row['diff']):.3f}")
    return f"detects ±{row['detectable']:.3f} at 80% power with {row['seed_pairs']} seed pairs; {need}; {floor}"


def _provenance(report: dict) -> str:
    v = report["versions"]
    lines = [["cotdistill", escape(v["cotdistill"])], ["code (git)", escape(v["code"])],
             ["results version (this code)", str(v["results_version"])],
             ["results versions of the runs", escape(", ".join(map(str, v["runs_results_versions"])))]]
    for dataset, hashes in v["datasets"].items():
        for key, values in hashes.items():
            lines.append([escape(f"{dataset}: {key}"), escape(", ".join(values) or "not recorded")])
    for key, found in (v.get("environment") or {}).items():
        missing = found["not_recorded"]
        text = ", ".join(found["values"])
        if missing:
            text += ("; " if text else "") + (f"not recorded (runs {', '.join(map(str, missing))})"
                                              if text else "not recorded")
        lines.append([escape(f"environment: {key}"), escape(text)])
    lines.append(["config hashes", escape(", ".join(v["config_hashes"]))])
    return _table(["what", "value"], lines)


def _data_section(report: dict) -> str:
    parts = []
    for d in report["data_reports"]:
        title = f"<h3>{escape(d['dataset'])} {escape(json.dumps(d['options'])) if d['options'] else ''}</h3>"
        if d.get("error"):
            parts.append(title + f"<p class='warn'>The data report could not be made: {escape(d['error'])}</p>")
            continue
        leaks = ", ".join(f"{split}: {l['n']} rationales ({l['rate']:.1%}) name the gold answer"
                          for split, l in d["leaks"].items())
        warnings = "".join(f"<li class='warn'>{escape(w)}</li>" for w in d["warnings"]) or "<li>none</li>"
        parts.append(title + f"<p>Answer leakage: {escape(leaks or 'no rationales')}.</p><p>Warnings:</p><ul>{warnings}</ul>")
    return "".join(parts)


def _flags_section(report: dict) -> str:
    flagged = [r for r in report["runs"] if r["flags"]]
    if not flagged:
        return "<p>No run is flagged (constant answer, below the majority baseline, mostly unparsed).</p>"
    return _table(["run", "dataset / student", "arm", "seed", "why"],
                  [[str(r["id"]), escape(f"{r['dataset']} / {r['student']}"), escape(r["arm"]), str(r["seed"]),
                    escape("; ".join(r["flags"]))] for r in flagged])


def _flip_section(report: dict) -> str:
    parts = []
    for f in report["flips"]:
        parts.append(f"<h3>{escape(f['dataset'])} / {escape(f['student'])}: {escape(f['arm'])} vs {escape(f['reference'])}</h3>"
                     f"<p>{f['n_fixed']} item(s) fixed and {f['n_broken']} broken on every one of the "
                     f"{f['seed_pairs']} seed pair(s) ({f['n_changed']} items differ on at least one). Answers "
                     f"shown are those of seed {f['answers_of_seed']}.</p>")
        for what, items, total in (("fixed", f["fixed"], f["n_fixed"]), ("broken", f["broken"], f["n_broken"])):
            if items:
                parts.append(f"<p class='small'>{what.capitalize()} on every seed pair: "
                             + (f"showing {len(items)} of {total}" if len(items) < total else f"all {total}")
                             + ".</p>")
                parts.append(_table([f"{what}: item", "question", "gold", "arm", "reference", "rationale (dataset)",
                                     "as the arm trains on it"],
                                    [[escape(e["example_id"]), escape(e.get("question") or "(not loadable)"),
                                      escape(str(e.get("label"))), escape(str(e["arm_answer"])),
                                      escape(str(e["reference_answer"])), escape(e.get("rationale") or "–"),
                                      escape(e["as_trained"]) if e["as_trained"] is not None
                                      else f'<span class="small">{escape(e["as_trained_how"])}</span>']
                                     for e in items]))
    return "".join(parts) or "<p>No arm was compared with the reference.</p>"


def _plot(fig: go.Figure, div_id: str, first: bool) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=first, div_id=div_id, config={"displaylogo": False})


def html_page(report: dict) -> str:
    e = report["experiment"]
    plots = [("Accuracy", accuracy_figure(report["rows"]), "fig-accuracy")]
    if any(r.get("diff") is not None for r in report["rows"]):
        plots.append(("Difference to the reference arm", difference_figure(report["rows"]), "fig-difference"))
    if report["curves"]:
        plots.append(("Label loss during training", curves_figure(report), "fig-curves"))
    k = k_figure(report["rows"])
    if k is not None:
        plots.append(("Key tokens: accuracy against k", k, "fig-accuracy-vs-k"))
    figure_html = "".join(f"<h3>{escape(title)}</h3>" + _plot(fig, div, i == 0)
                          for i, (title, fig, div) in enumerate(plots))
    design = yaml.safe_dump({"factors": e["factors"], "base": e["base"]}, sort_keys=False)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>cotdistill report: {escape(e['name'])}</title>
<style>{STYLE}</style></head><body>
<h1>Experiment {escape(e['name'])}</h1>
<p class="small">Report made {escape(report['made_at'])} from database {escape(report['database'])};
experiment #{e['id']} created {escape(str(e['created_at']))}, {e['cells']} cells, {len(report['runs'])} runs.
Reference arm: <b>{escape(report['reference'])}</b>. Scoring: {escape(report['scoring'] or "each run's own")}.</p>
<h2>Design</h2><pre>{escape(design)}</pre>
<h2>Versions and data</h2>{_provenance(report)}
<h2>Data report</h2>{_data_section(report)}
<h2>Accuracy and verdicts</h2>{_accuracy_table(report)}
<p class="small">{escape(report['method'])} Seed budget: from the spread of the per-pair differences, the
smallest true difference the paired t-test finds with 80% probability at α = 0.05 with these seed pairs, and how
many seed pairs the observed difference would need.</p>
<h2>Figures</h2>{figure_html}
<h2>Flags</h2>{_flags_section(report)}
<h2>Flip analysis</h2>
<p class="small">Test items are never trained on: the rationale shown is the item's rationale in the dataset, and
beside it the same rationale as the arm's training target holds a training item's (its placement and perturbation,
with the seed of the answers shown), where that needs no tokenizer.</p>{_flip_section(report)}
<h2>Runs</h2>{_table(["run", "dataset / student", "arm", "seed", "status", "evaluated by", "accuracy", "config hash"],
                     [[str(r["id"]), escape(f"{r['dataset']} / {r['student']}"), escape(r["arm"]), str(r["seed"]),
                       escape(r["status"]), escape(r.get("eval_mode") or "–"), fmt.fmt(r["accuracy"]),
                       escape(r["config_hash"])] for r in report["runs"]])}
</body></html>
"""
