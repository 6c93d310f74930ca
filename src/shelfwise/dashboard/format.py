"""How numbers read on the dashboard: currency, percentages, counts, times."""

from __future__ import annotations

from datetime import datetime

from jinja2 import Environment, PackageLoader, select_autoescape

from shelfwise.monitoring.attribution import window_label

SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "JPY": "¥"}


def money(value: float | None, currency: str) -> str:
    if value is None:
        return "n/a"
    sign = "-" if value < 0 else ""
    symbol = SYMBOLS.get(currency)
    amount = f"{abs(value):,.2f}"
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {currency}"


def percent(value: float | None, digits: int = 2) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}%"


def count(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def when(value: datetime | None) -> str:
    return "n/a" if value is None else f"{value:%d %b %Y, %H:%M} UTC"


def hours(value: float | None) -> str:
    """A duration in hours, as a merchandiser reads it: ``45 min``, ``3.5 h``, ``2 d 4 h``."""
    if value is None:
        return "n/a"
    if value < 1:
        return f"{value * 60:.0f} min"
    if value < 48:
        return f"{value:.1f} h"
    return f"{value // 24:.0f} d {value % 24:.0f} h"


def label(name: str) -> str:
    """``home_top_picks`` -> ``Home top picks``; ``bedding/sheets`` -> ``Bedding / sheets``."""
    text = name.replace("_", " ").replace("-", " ").replace("/", " / ")
    return text[:1].upper() + text[1:]


def placement_label(placement: str) -> str:
    """What every table, chart and title calls a placement: ``product_similar`` ->
    ``Product similar``; ``all`` -> ``All placements``. The one mapping from a
    placement id to its label (a rule's scope names placements through
    ``dashboard.ruleedit.scope_label``, which uses this)."""
    return "All placements" if placement == "all" else label(placement)


def window(hours_: float) -> str:
    """An attribution window as stated next to a revenue figure."""
    return window_label(hours_)


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("shelfwise.dashboard", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        money=money,
        percent=percent,
        count=count,
        when=when,
        label=label,
        hours=hours,
        placement=placement_label,
        window=window,
    )
    return env
