"""Cells that carry their raw value next to the formatted text."""

from __future__ import annotations

from shelfwise.dashboard.format import count, money, percent
from shelfwise.dashboard.slots import PanelCell, Tone


def money_cell(value: float | None, currency: str, testid: str | None = None) -> PanelCell:
    return PanelCell(money(value, currency), value=value, testid=testid)


def percent_cell(value: float | None, testid: str | None = None, digits: int = 2) -> PanelCell:
    return PanelCell(percent(value, digits), value=value, testid=testid)


def count_cell(value: float | None, testid: str | None = None) -> PanelCell:
    return PanelCell(count(value), value=value, testid=testid)


def badge(text: str, tone: Tone, testid: str | None = None) -> PanelCell:
    return PanelCell(text, tone=tone, testid=testid)


def interval(low: float | None, high: float | None, fmt: str = "{:+.2%}") -> str:
    """``[-1.20%, +3.40%]``; ``n/a`` when either end is unknown."""
    if low is None or high is None:
        return "n/a"
    return "[" + fmt.format(low) + ", " + fmt.format(high) + "]"
