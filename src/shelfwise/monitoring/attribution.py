"""The one definition of *revenue from recommendations*.

A purchase line is revenue from recommendations, counted once at quantity x unit
price, when

1. it carries a ``rec_id``: the storefront tied the line to the slate it came
   from (the tracker keeps the slate's id on the cart line until checkout), or
2. it carries none, and the same shopper (the same anonymous id, or the same
   customer id) clicked that product in a recommendation slate at most
   ``attribution_window_hours`` (the setting, 24 by default) before buying it.

A line of route 2 is credited to the placement of the latest such click. Every
other line of the order is not recommendation revenue: it belongs only to the
descriptive "revenue of sessions that interacted with recommendations".

The overview, ``GET /v1/monitoring/metrics``, the alerts' series, the
experiments' readout (``recommendation_revenue``, and the ``attributed`` lines
of the incrementality estimate) all count with this module: the SQL form
(:func:`clicked_placement`) for the store-wide aggregations, the Python form
(:func:`attributed`) for the readout's per-person scan. A test holds them to the
same figure on the same purchases, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Integer, and_, cast, extract, func, or_, select

from shelfwise.store.tables import events, interactions

DEFAULT_WINDOW_HOURS = 24.0
T = TypeVar("T")


def definition(window_hours: float) -> str:
    """The definition in one sentence, with the window, for pages and API responses."""
    return (
        "Revenue from recommendations: purchase lines carrying a recommendation's rec_id, "
        "or bought by a shopper who clicked that product in a recommendation at most "
        f"{window_hours:g} h before; each line counted once, at quantity x unit price."
    )


def window_label(window_hours: float) -> str:
    """The window as shown next to a figure: ``24 h attribution window``."""
    return f"{window_hours:g} h attribution window"


def credited_click(
    bought_at: datetime, clicks: Iterable[tuple[datetime, T]], window_hours: float
) -> T | None:
    """Route 2 for one purchase line: of the shopper's clicks on that product in
    recommendation slates (``(clicked_at, what)``), the latest at most the window
    before ``bought_at``; None when there is none."""
    window = timedelta(hours=window_hours)
    best: tuple[datetime, T] | None = None
    for at, what in clicks:
        if at <= bought_at <= at + window and (best is None or at >= best[0]):
            best = (at, what)
    return None if best is None else best[1]


def attributed(
    rec_id: str | None,
    bought_at: datetime,
    clicked_at: Iterable[datetime],
    window_hours: float,
) -> bool:
    """Route 1 or 2 of the definition for one purchase line (``clicked_at``: the
    shopper's clicks on that product in recommendation slates)."""
    if rec_id:
        return True
    return credited_click(bought_at, ((at, True) for at in clicked_at), window_hours) is not None


def epoch_seconds(col: Any, backend: str) -> ColumnElement[Any]:
    """Whole seconds since the epoch of an aware-UTC column, on SQLite and PostgreSQL."""
    if backend == "sqlite":
        return cast(func.strftime("%s", col), Integer)
    return extract("epoch", col)


def clicked_placement(line: Any, backend: str, window_hours: float) -> ColumnElement[Any]:
    """Route 2 in SQL, for a purchase row ``line`` of an ``interactions`` alias: the
    placement of the shopper's latest click on that product at most the window before
    (``'(unknown)'`` for a click without a placement), NULL when there is none."""
    # Driven from the shopper's events (indexed by anonymous and customer id), then
    # the click's product by its primary key: a product's rows are many (every
    # impression), a shopper's few. ``|| ''`` keeps SQLite off the product index.
    e = events.alias("attributing_event")
    c = interactions.alias("attributing_click")
    same_shopper = or_(
        e.c.anonymous_id == line.c.anonymous_id,
        and_(line.c.customer_id.is_not(None), e.c.customer_id == line.c.customer_id),
    )
    return (
        select(func.coalesce(c.c.placement, "(unknown)"))
        .select_from(e.join(c, c.c.event_id == e.c.event_id))
        .where(
            e.c.type == "rec_click",
            same_shopper,
            c.c.product_id.concat("") == line.c.product_id,
            c.c.occurred_at <= line.c.occurred_at,
            epoch_seconds(c.c.occurred_at, backend)
            >= epoch_seconds(line.c.occurred_at, backend) - window_hours * 3600,
        )
        .order_by(c.c.occurred_at.desc())
        .limit(1)
        .scalar_subquery()
    )


__all__ = [
    "DEFAULT_WINDOW_HOURS",
    "attributed",
    "clicked_placement",
    "credited_click",
    "definition",
    "epoch_seconds",
    "window_label",
]
