"""Plotly figures for the dashboard, as JSON the page hands to the locally served plotly.js."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import plotly.graph_objects as go

from shelfwise.dashboard.format import label

_LAYOUT: dict[str, Any] = {
    "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
    "height": 320,
    "paper_bgcolor": "white",
    "plot_bgcolor": "white",
    "font": {"family": "system-ui, sans-serif", "size": 13},
    "legend": {"orientation": "h", "y": -0.2},
}


def to_json(fig: go.Figure) -> str:
    """Figure JSON safe to place inside a <script> element."""
    return str(fig.to_json()).replace("</", "<\\/")


def from_dict(figure: dict[str, Any]) -> str:
    return json.dumps(figure).replace("</", "<\\/")


def _bar(
    title: str, names: Sequence[str], values: Sequence[float], axis: str, colour: str
) -> go.Figure:
    fig = go.Figure(go.Bar(x=[label(n) for n in names], y=list(values), marker_color=colour))
    fig.update_layout(title=title, yaxis_title=axis, **_LAYOUT)
    return fig


def bars(title: str, names: Sequence[str], values: Sequence[float], axis: str) -> str:
    return to_json(_bar(title, names, values, axis, "#2f6f5e"))


def bar_dict(
    title: str,
    names: Sequence[str],
    values: Sequence[float],
    axis: str,
    colour: str = "#2f6f5e",
) -> dict[str, Any]:
    """A bar chart as the dict a slot provider returns."""
    out: dict[str, Any] = _bar(title, names, values, axis, colour).to_plotly_json()
    return out


def lines(
    title: str, series: Mapping[str, tuple[Sequence[datetime], Sequence[float]]], axis: str
) -> str:
    fig = go.Figure()
    for name, (x, y) in sorted(series.items()):
        fig.add_trace(go.Scatter(x=list(x), y=list(y), mode="lines+markers", name=label(name)))
    fig.update_layout(title=title, yaxis_title=axis, **_LAYOUT)
    return to_json(fig)


def compare_shares(
    title: str, bins: Sequence[str], reference: Sequence[float], current: Sequence[float]
) -> str:
    fig = go.Figure(
        [
            go.Bar(x=list(bins), y=list(reference), name="Reference", marker_color="#9bb8ae"),
            go.Bar(x=list(bins), y=list(current), name="Current", marker_color="#2f6f5e"),
        ]
    )
    fig.update_layout(title=title, yaxis_title="share", yaxis_tickformat=".0%", **_LAYOUT)
    return to_json(fig)


def styled(fig: go.Figure, title: str, **layout: Any) -> dict[str, Any]:
    """The dashboard's look on ``fig``, as the dict a slot provider returns."""
    fig.update_layout(title=title, **{**_LAYOUT, **layout})
    out: dict[str, Any] = fig.to_plotly_json()
    return out
