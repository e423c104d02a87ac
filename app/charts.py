"""Plotly figures of the Compare and Runs pages, built from the jobs API's plain data.

    fig = accuracy_bars(api.compare(run_ids), notes)     # bars ± 95% interval, one dot per seed
    fig = loss_curves(api.curves(run_ids), labels)       # training curves overlaid
    fig = arm_curves(api.curves(run_ids, "label_loss", x="tokens"), groups, "tokens", "label loss")
"""

from __future__ import annotations

from collections import defaultdict

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

PLACEMENT_ORDER = {"untouched": -1, "none": 0, "before": 1, "after": 2}
COLLAPSED = "⚠ not distinguishable from a constant answer"


def perturbation_label(arm: dict) -> str:
    """An arm's label after its placement, the bar's place within the placement's group:
    `mask(p=0.5) · n_train=400` for `after/mask(p=0.5) · n_train=400`, `none` for a plain placement,
    the whole label for the untouched student."""
    label, placement = arm["arm"], arm["placement"]
    if arm.get("untouched") or not label.startswith(placement):
        return label
    rest = label[len(placement):]
    if rest.startswith("/"):
        return rest[1:]
    return arm["perturbation"] + rest


def placement_group(arm: dict) -> str:
    """The bar group an arm sits in: its placement, or `untouched` for the student evaluated without
    fine-tuning."""
    return "untouched" if arm.get("untouched") else arm["placement"]


def _colours(labels: list[str]) -> dict[str, str]:
    palette = qualitative.Plotly
    return {label: palette[i % len(palette)] for i, label in enumerate(labels)}


def _panels(arms: list[dict]) -> list[tuple[str, str]]:
    return sorted({(a["dataset"], a["student"]) for a in arms})


def accuracy_bars(arms: list[dict], notes: dict[int, str] | None = None) -> go.Figure:
    """Mean test accuracy per arm: bars grouped by placement and coloured by perturbation, the 95%
    interval over seeds as error bars, one dot per seed (a cross for a run that collapsed to a constant
    answer), and a ⚠ marker above arms with such a run. One panel per (dataset, student).
    `notes` maps run id to its collapse reason, shown when hovering the marker."""
    notes = notes or {}
    panels = _panels(arms)
    colours = _colours(sorted({perturbation_label(a) for a in arms}))
    titles = [f"{d} · {s}" for d, s in panels] if len(panels) > 1 else None
    fig = make_subplots(rows=max(len(panels), 1), cols=1, subplot_titles=titles, vertical_spacing=0.12)
    shown: set[str] = set()
    for row, panel in enumerate(panels, start=1):
        ordered = sorted((a for a in arms if (a["dataset"], a["student"]) == panel),
                         key=lambda a: (PLACEMENT_ORDER.get(placement_group(a), 9), placement_group(a),
                                        perturbation_label(a)))
        for arm in ordered:
            for trace in _arm_traces(arm, colours, notes, shown):
                fig.add_trace(trace, row=row, col=1)
        fig.update_yaxes(title_text="test accuracy", range=[0, 1.08], row=row, col=1)
    fig.update_layout(barmode="overlay", height=380 * max(len(panels), 1), legend_title_text="perturbation",
                      margin=dict(t=40, b=40))
    return fig


def _arm_traces(arm: dict, colours: dict[str, str], notes: dict[int, str], shown: set[str]) -> list:
    pert = perturbation_label(arm)
    n = len(arm["accuracies"])
    collapsed = arm.get("collapsed") or [False] * n
    has_interval = arm.get("low") is not None and arm.get("high") is not None
    error = (dict(type="data", symmetric=False, array=[arm["high"] - arm["mean"]],
                  arrayminus=[arm["mean"] - arm["low"]], color="#444") if has_interval else None)
    group = placement_group(arm)
    x = [[group], [pert]]
    interval = f"[{arm['low']:.3f}, {arm['high']:.3f}]" if has_interval else "(one seed: no interval)"
    traces = [go.Bar(x=x, y=[arm["mean"]], error_y=error, name=pert, legendgroup=pert, showlegend=pert not in shown,
                     marker_color=colours[pert], width=0.7,
                     hovertemplate=f"{arm['arm']}<br>mean %{{y:.3f}} {interval}<br>{n} seed(s)<extra></extra>")]
    shown.add(pert)
    traces.append(go.Scatter(
        x=[[group] * n, [pert] * n], y=arm["accuracies"], mode="markers", name="seed",
        legendgroup="seed", showlegend="seed" not in shown,
        marker=dict(color="black", size=8, symbol=["x" if c else "circle" for c in collapsed]),
        text=[f"seed {s} · run {r}" for s, r in zip(arm["seeds"], arm["runs"])],
        hovertemplate="%{text}<br>accuracy %{y:.3f}<extra></extra>"))
    shown.add("seed")
    if any(collapsed):
        reasons = [notes.get(r, "") for r, c in zip(arm["runs"], collapsed) if c]
        top = max([arm["mean"], arm.get("high") or 0.0, *arm["accuracies"]])
        traces.append(go.Scatter(
            x=x, y=[min(top + 0.05, 1.04)], mode="text", text=["⚠"], textfont=dict(size=18, color="#b45309"),
            name=COLLAPSED, legendgroup="collapsed", showlegend="collapsed" not in shown,
            hovertext=[f"{sum(collapsed)} of {n} seed(s) {COLLAPSED[2:]}<br>" + "<br>".join(r for r in reasons if r)],
            hoverinfo="text"))
        shown.add("collapsed")
    return traces


AXIS_TITLES = {"step": "step", "epoch": "epoch", "tokens": "training tokens seen"}


def loss_curves(points: list[dict], labels: dict[int, str], groups: dict[int, str] | None = None,
                x: str = "step", y_title: str = "training loss") -> go.Figure:
    """Training curves overlaid, one line per run; runs of one arm (`groups`: run id → arm) share a
    colour and a legend entry. Points carry `x` (api.curves), else their step is the x value."""
    by_run: dict[int, list[dict]] = defaultdict(list)
    for p in points:
        by_run[p["run_id"]].append(p)
    groups = groups or {r: labels.get(r, str(r)) for r in by_run}
    colours = _colours(sorted(set(groups.values())))
    fig = go.Figure()
    shown: set[str] = set()
    for run_id in sorted(by_run):
        group = groups.get(run_id, str(run_id))
        fig.add_trace(go.Scatter(x=[p.get("x", p["step"]) for p in by_run[run_id]],
                                 y=[p["value"] for p in by_run[run_id]],
                                 mode="lines", name=group, legendgroup=group, showlegend=group not in shown,
                                 line=dict(color=colours[group]), text=[labels.get(run_id, str(run_id))] * len(by_run[run_id]),
                                 hovertemplate=f"%{{text}}<br>{AXIS_TITLES.get(x, x)} %{{x}}: %{{y:.4f}}<extra></extra>"))
        shown.add(group)
    fig.update_layout(xaxis_title=AXIS_TITLES.get(x, x), yaxis_title=y_title, height=380, margin=dict(t=30, b=40))
    return fig


def arm_bands(points: list[dict], groups: dict[int, str]) -> dict[str, list[dict]]:
    """Curve points (api.curves) per arm (`groups`: run id → arm; other runs left out), one per step:
    {step, x, mean, low, high, n}: the mean, minimum and maximum over the arm's runs that recorded
    that step, and x the mean of their x values (seeds see different token counts by a step)."""
    by_step: dict[str, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for p in points:
        if p["run_id"] in groups:
            by_step[groups[p["run_id"]]][p["step"]].append(p)
    out = {}
    for arm, steps in by_step.items():
        out[arm] = []
        for step in sorted(steps):
            values = [p["value"] for p in steps[step]]
            xs = [p.get("x", step) for p in steps[step]]
            out[arm].append({"step": step, "x": sum(xs) / len(xs), "mean": sum(values) / len(values),
                             "low": min(values), "high": max(values), "n": len(values)})
    return out


def arm_curves(points: list[dict], groups: dict[int, str], x: str, y_title: str,
               y_range: list[float] | None = None) -> go.Figure:
    """One line per arm: the mean over its seeds at each step, against `x` (step, epoch, tokens), with
    the min–max over seeds as a shaded band (none for an arm with one seed)."""
    bands = arm_bands(points, groups)
    colours = _colours(sorted(bands))
    fig = go.Figure()
    for arm in sorted(bands):
        line = bands[arm]
        if any(p["n"] > 1 for p in line):           # the band: up along the maxima, back along the minima
            fig.add_trace(go.Scatter(x=[p["x"] for p in line] + [p["x"] for p in line[::-1]],
                                     y=[p["high"] for p in line] + [p["low"] for p in line[::-1]],
                                     fill="toself", mode="lines", line=dict(width=0), fillcolor=colours[arm],
                                     opacity=0.2, name=f"{arm}: min–max over seeds", legendgroup=arm,
                                     showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=[p["x"] for p in line], y=[p["mean"] for p in line], mode="lines+markers",
                                 name=arm, legendgroup=arm, line=dict(color=colours[arm]), marker=dict(size=4),
                                 text=[f"{p['n']} seed(s), min {p['low']:.4f}, max {p['high']:.4f}" for p in line],
                                 hovertemplate=f"{AXIS_TITLES.get(x, x)} %{{x}}: mean %{{y:.4f}}<br>%{{text}}"
                                               f"<extra>{arm}</extra>"))
    fig.update_layout(xaxis_title=AXIS_TITLES.get(x, x), yaxis_title=y_title, height=380,
                      margin=dict(t=30, b=40), legend=dict(orientation="h", y=-0.25))
    if y_range is not None:
        fig.update_yaxes(range=y_range)
    return fig


# ------------------------------------------------------------------------------------------ one run's answers

def per_label_accuracy(summary: dict) -> go.Figure:
    """Accuracy on the items of each gold label, with the run's accuracy and the majority baseline
    (always answering the most frequent gold label) as lines: a run answering one constant label
    scores 1.0 on that label and 0.0 on the others."""
    per_label = summary.get("per_label_accuracy") or {}
    labels = list(per_label)
    fig = go.Figure(go.Bar(x=labels, y=[per_label[k] for k in labels], name="accuracy on the label's items",
                           marker_color=qualitative.Plotly[0],
                           hovertemplate="gold %{x}: accuracy %{y:.3f}<extra></extra>"))
    lines = [("run accuracy", summary.get("accuracy"), "solid", "top left"),
             (f"majority baseline (always {summary.get('majority_label')!r})", summary.get("majority_baseline"), "dot",
              "bottom right")]
    for name, value, dash, where in lines:
        if value is not None:                # a shape across the whole axis, labelled at one end
            fig.add_hline(y=value, name=name, line=dict(color="#444", dash=dash, width=1.5),
                          annotation_text=f"{name}: {value:.3f}", annotation_position=where)
    fig.update_layout(xaxis_title="gold label", yaxis_title="accuracy", yaxis_range=[0, 1.05], height=320,
                      margin=dict(t=30, b=40), legend=dict(orientation="h", y=-0.25))
    return fig


def answer_distribution(summary: dict) -> go.Figure:
    """Share of the items per label: what the run answered next to the gold labels."""
    predicted = summary.get("prediction_distribution") or {}
    gold = summary.get("gold_distribution") or {}
    labels = list(dict.fromkeys([*gold, *predicted]))
    fig = go.Figure([
        go.Bar(x=labels, y=[predicted.get(k, 0.0) for k in labels], name="predicted", marker_color=qualitative.Plotly[1],
               hovertemplate="answered %{x} on %{y:.1%} of the items<extra></extra>"),
        go.Bar(x=labels, y=[gold.get(k, 0.0) for k in labels], name="gold", marker_color=qualitative.Plotly[2],
               hovertemplate="gold %{x} on %{y:.1%} of the items<extra></extra>")])
    fig.update_layout(barmode="group", xaxis_title="label", yaxis_title="share of the test items",
                      yaxis_range=[0, 1.05], height=320, margin=dict(t=30, b=40), legend=dict(orientation="h", y=-0.25))
    return fig


# ------------------------------------------------------------------------------------------ key tokens

K_SERIES = {"key_tokens": "key tokens (top k by score)", "random_subset": "random k words (control)"}
REFERENCES = {("after", "none"): "full rationale (after)", ("none", "none"): "label only (none)"}
CATEGORY_COLOURS = {"content": "#2563eb", "answer": "#b45309", "function": "#9ca3af"}


def study_points(arms: list[dict]) -> list[dict]:
    """A key-token study's arms as points: one per (series, k) for the arms that keep k words after
    the label (key tokens, random control), and the references (full rationale after, label only).
    Each: series, k (None for a reference), mean, low, high (None with one seed), accuracies, seeds,
    runs and collapsed (per seed: the run is not distinguishable from a constant answer; from the
    arm's `collapsed`, see compare_view.mark_collapsed)."""
    points = []
    for a in arms:
        params = a.get("perturbation_params") or {}
        if a["placement"] == "after" and a["perturbation"] in K_SERIES and params.get("k") is not None:
            rest = {k: v for k, v in params.items() if k != "k" and v is not None
                    and (k, v) not in (("order", "original"), ("signed", False))}   # the defaults
            series = K_SERIES[a["perturbation"]] + (f" ({', '.join(f'{k}={v}' for k, v in sorted(rest.items()))})"
                                                     if rest else "")
            k = params["k"]
        elif (a["placement"], a["perturbation"]) in REFERENCES:
            series, k = REFERENCES[(a["placement"], a["perturbation"])], None
        else:
            continue
        collapsed = list(a.get("collapsed") or [False] * len(a["accuracies"]))
        points.append({"series": series, "k": k, "arm": a["arm"], "n_seeds": a["n_seeds"], "mean": a["mean"],
                       "low": a["low"], "high": a["high"], "accuracies": a["accuracies"], "seeds": a["seeds"],
                       "runs": a.get("runs") or [], "collapsed": collapsed})
    return sorted(points, key=lambda p: (p["k"] is None, p["series"], p["k"] or 0))


def accuracy_vs_k(arms: list[dict], notes: dict[int, str] | None = None) -> go.Figure:
    """Test accuracy against k: the key-token line and the random-k control, each point the mean over
    seeds with its 95% interval (dots: the seeds, a cross for a run that collapsed to a constant
    answer); the full rationale and label only as horizontal lines with their intervals as bands. A ⚠
    marks every point or reference line with such a run (`notes`: run id → its reason, on hover), as
    on the Compare bars."""
    notes = notes or {}
    points = study_points(arms)
    ks = sorted({p["k"] for p in points if p["k"] is not None})
    x0, x1 = (ks[0] - 0.5, ks[-1] + 0.5) if ks else (0, 1)
    series = list(dict.fromkeys(p["series"] for p in points if p["k"] is not None))
    colours = _colours(series)
    fig = go.Figure()
    for name in series:
        line = [p for p in points if p["series"] == name]
        intervals = all(p["low"] is not None for p in line)
        fig.add_trace(go.Scatter(
            x=[p["k"] for p in line], y=[p["mean"] for p in line], mode="lines+markers", name=name, legendgroup=name,
            line=dict(color=colours[name]),
            error_y=dict(type="data", symmetric=False, array=[p["high"] - p["mean"] for p in line],
                         arrayminus=[p["mean"] - p["low"] for p in line]) if intervals else None,
            hovertemplate="k=%{x}: mean %{y:.3f}<extra>" + name + "</extra>"))
        fig.add_trace(go.Scatter(
            x=[p["k"] for p in line for _ in p["accuracies"]], y=[v for p in line for v in p["accuracies"]],
            mode="markers", name=f"{name}: seeds", legendgroup=name, showlegend=False,
            marker=dict(color=colours[name], size=[9 if c else 6 for p in line for c in p["collapsed"]],
                        opacity=0.45, symbol=["x" if c else "circle" for p in line for c in p["collapsed"]]),
            text=[f"seed {s}" + (" (constant answer)" if c else "") for p in line
                  for s, c in zip(p["seeds"], p["collapsed"])],
            hovertemplate="k=%{x}, %{text}: %{y:.3f}<extra></extra>"))
    for i, ref in enumerate(p for p in points if p["k"] is None):
        colour = "#444" if ref["series"].startswith("full") else "#b91c1c"
        if ref["low"] is not None:
            fig.add_trace(go.Scatter(x=[x0, x1, x1, x0, x0], y=[ref["low"], ref["low"], ref["high"], ref["high"], ref["low"]],
                                     fill="toself", mode="lines", line=dict(width=0), fillcolor=colour, opacity=0.12,
                                     name=f"{ref['series']}: 95% interval", legendgroup=ref["series"], showlegend=False,
                                     hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=[x0, x1], y=[ref["mean"], ref["mean"]], mode="lines", name=ref["series"],
                                 legendgroup=ref["series"], line=dict(color=colour, dash="dash" if i == 0 else "dot"),
                                 hovertemplate=f"{ref['series']}: mean {ref['mean']:.3f}<extra></extra>"))
    _collapse_marks(fig, points, notes, x1)
    fig.update_layout(xaxis=dict(title="k (rationale words kept after the label)", tickvals=ks, range=[x0, x1]),
                      yaxis=dict(title="test accuracy", range=[0, 1.05]), height=420, margin=dict(t=30, b=40))
    return fig


def _collapse_marks(fig: go.Figure, points: list[dict], notes: dict[int, str], x1: float) -> None:
    """One ⚠ trace above every study point (a reference: at the right end of its line) with a run not
    distinguishable from a constant answer, its reasons on hover."""
    flagged = [p for p in points if any(p["collapsed"])]
    if not flagged:
        return
    fig.add_trace(go.Scatter(
        x=[x1 - 0.15 if p["k"] is None else p["k"] for p in flagged],
        y=[min(max([p["mean"], p["high"] or 0.0, *p["accuracies"]]) + 0.05, 1.04) for p in flagged],
        mode="text", text=["⚠"] * len(flagged), textfont=dict(size=18, color="#b45309"), name=COLLAPSED,
        hovertext=[f"{p['series']}" + (f", k={p['k']}" if p["k"] is not None else "") + f": {sum(p['collapsed'])} of "
                   f"{len(p['collapsed'])} seed(s) {COLLAPSED[2:]}<br>"
                   + "<br>".join(notes.get(r, "") for r, c in zip(p["runs"], p["collapsed"]) if c and notes.get(r))
                   for p in flagged],
        hoverinfo="text"))


def key_token_counts(rows: list[dict], top: int = 20) -> go.Figure:
    """The most frequent key tokens, one horizontal bar each, coloured by category."""
    shown = rows[:top][::-1]                     # the most frequent at the top
    labels = [f"{r['token']} ({r['category']})" for r in shown]
    fig = go.Figure()
    for category, colour in CATEGORY_COLOURS.items():
        mine = [(label, r) for label, r in zip(labels, shown) if r["category"] == category]
        if mine:
            fig.add_trace(go.Bar(y=[label for label, _ in mine], x=[r["count"] for _, r in mine], orientation="h",
                                 name=category, marker_color=colour,
                                 hovertemplate="%{y}: in the top k of %{x} example(s)<extra></extra>"))
    fig.update_layout(barmode="stack", xaxis_title="examples whose top k hold the word", height=max(260, 22 * len(shown) + 80),
                      margin=dict(t=30, b=40), yaxis=dict(categoryorder="array", categoryarray=labels))
    return fig
