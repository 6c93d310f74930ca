"""Signal quality: per platform x browser x app version, with the FDR-controlled flags."""

from __future__ import annotations

from typing import TYPE_CHECKING

import plotly.graph_objects as go

from shelfwise.contracts.quality import quality_report
from shelfwise.dashboard import charts
from shelfwise.dashboard.format import count, label, percent
from shelfwise.dashboard.panels.cells import count_cell, money_cell, percent_cell
from shelfwise.dashboard.slots import Cell, Panel, PanelTable, SlotParams

if TYPE_CHECKING:
    from shelfwise.runtime import Runtime

RATES = (
    ("view_to_cart", "View → cart"),
    ("cart_to_purchase", "Cart → purchase"),
    ("duplicate_rate", "Duplicates"),
    ("late_rate", "Late"),
    ("schema_violation_rate", "Rejected"),
    ("join_rate", "Catalog join"),
)
METRIC_NAMES = dict(RATES) | {
    "purchase_without_cart": "Purchases without a cart",
    "out_of_order_rate": "Out of order",
}


def _segment(segment: tuple[str, str, str]) -> str:
    return f"{label(segment[0])} · {segment[1]} · {segment[2]}"


def signals_panel(runtime: Runtime, params: SlotParams) -> Panel:
    report = quality_report(runtime.db)
    currency = runtime.settings.currency
    t = report.totals
    segments: list[list[Cell]] = [
        [
            _segment(s.segment),
            count_cell(s.counts.get("events", 0), f"events-{i}"),
            *(percent_cell(s.rate(m), f"{m}-{i}", 1) for m, _ in RATES),
            money_cell(s.revenue, currency),
        ]
        for i, s in enumerate(report.segments)
    ]
    flags: list[list[Cell]] = [
        [
            _segment(f.segment),
            METRIC_NAMES.get(f.metric, label(f.metric)),
            percent(f.rate, 1),
            percent(f.rest_rate, 1),
            f"{f.q_value:.2g}",
            money_cell(f.revenue_at_stake, currency, f"flag-risk-{i}"),
        ]
        for i, f in enumerate(report.flags)
    ]
    names = [_segment(s.segment) for s in report.segments]
    fig = go.Figure(
        [
            go.Bar(
                x=names, y=[s.rate("view_to_cart") for s in report.segments], name="View → cart"
            ),
            go.Bar(
                x=names,
                y=[s.rate("cart_to_purchase") for s in report.segments],
                name="Cart → purchase",
                marker_color="#9bb8ae",
            ),
        ]
    )
    summary = (
        f"All events in the store: {count(t.get('events', 0))} accepted, "
        f"{count(t.get('rejected', 0))} rejected to quarantine, "
        f"{count(t.get('duplicates', 0))} duplicates. A segment is flagged when its rate is "
        "worse than the rest of the traffic after false-discovery control."
    )
    return Panel(
        title="Signal quality",
        summary=summary,
        ranged=False,
        figures=[
            charts.styled(
                fig, "Funnel rates by platform, browser and app version", yaxis_tickformat=".0%"
            )
        ]
        if report.segments
        else [],
        tables=[
            PanelTable(
                "Flagged segments",
                ["Segment", "Metric", "Rate", "Rest of traffic", "q-value", "Revenue at stake"],
                flags,
                testid="flags",
                empty="No segment stands out.",
            ),
            PanelTable(
                "Segments",
                ["Platform · browser · app version", "Events", *(n for _, n in RATES), "Revenue"],
                segments,
                testid="segments",
                empty="No events yet.",
            ),
        ],
    )
