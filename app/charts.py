"""Plotly figures of the Compare and Runs pages, built from the jobs API's plain data.

    fig = accuracy_bars(api.compare(run_ids), notes)     # bars ± 95% interval, one dot per seed
    fig = loss_curves(api.curves(run_ids), labels)       # training curves overlaid
"""

from __future__ import annotations

from collections import defaultdict

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

PLACEMENT_ORDER = {"none": 0, "before": 1, "after": 2}
COLLAPSED = "⚠ not distinguishable from a constant answer"


def perturbation_label(arm: dict) -> str:
    """The perturbation part of an arm label, with its parameters: `mask(mode=drop,p=0.5)`."""
    return arm["arm"].split("/", 1)[1] if "/" in arm["arm"] else arm["perturbation"]


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
                         key=lambda a: (PLACEMENT_ORDER.get(a["placement"], 9), a["placement"], perturbation_label(a)))
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
    x = [[arm["placement"]], [pert]]
    interval = f"[{arm['low']:.3f}, {arm['high']:.3f}]" if has_interval else "(one seed: no interval)"
    traces = [go.Bar(x=x, y=[arm["mean"]], error_y=error, name=pert, legendgroup=pert, showlegend=pert not in shown,
                     marker_color=colours[pert], width=0.7,
                     hovertemplate=f"{arm['arm']}<br>mean %{{y:.3f}} {interval}<br>{n} seed(s)<extra></extra>")]
    shown.add(pert)
    traces.append(go.Scatter(
        x=[[arm["placement"]] * n, [pert] * n], y=arm["accuracies"], mode="markers", name="seed",
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


def loss_curves(points: list[dict], labels: dict[int, str], groups: dict[int, str] | None = None) -> go.Figure:
    """Training curves overlaid, one line per run; runs of one arm (`groups`: run id → arm) share a
    colour and a legend entry."""
    by_run: dict[int, list[dict]] = defaultdict(list)
    for p in points:
        by_run[p["run_id"]].append(p)
    groups = groups or {r: labels.get(r, str(r)) for r in by_run}
    colours = _colours(sorted(set(groups.values())))
    fig = go.Figure()
    shown: set[str] = set()
    for run_id in sorted(by_run):
        group = groups.get(run_id, str(run_id))
        fig.add_trace(go.Scatter(x=[p["step"] for p in by_run[run_id]], y=[p["value"] for p in by_run[run_id]],
                                 mode="lines", name=group, legendgroup=group, showlegend=group not in shown,
                                 line=dict(color=colours[group]), text=[labels.get(run_id, str(run_id))] * len(by_run[run_id]),
                                 hovertemplate="%{text}<br>step %{x}: %{y:.4f}<extra></extra>"))
        shown.add(group)
    fig.update_layout(xaxis_title="step", yaxis_title="training loss", height=380, margin=dict(t=30, b=40))
    return fig
