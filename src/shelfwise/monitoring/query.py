"""SQL aggregation of the event store into recommendation funnel counts.

One query groups the per-product ``interactions`` rows by funnel step,
placement, category, platform, visitor type and time bucket; numpy does the
rest. The same statements run on SQLite and PostgreSQL: only the expression
that turns a timestamp into whole epoch buckets differs.

Attribution: impressions and clicks carry their placement; add-to-cart lines
count when they carry a ``rec_id``; order lines count as revenue from
recommendations by the one definition of :mod:`shelfwise.monitoring.attribution`
(a ``rec_id``, or the shopper's click on the product within the attribution
window). A line with a ``rec_id`` takes the placement of the impression that served
it, a line attributed by a click that of the click. A visitor is *returning* when
their first event is on an earlier UTC day than the interaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    and_,
    case,
    cast,
    extract,
    func,
    literal,
    or_,
    select,
)

from shelfwise.monitoring.attribution import DEFAULT_WINDOW_HOURS, clicked_placement
from shelfwise.store.engine import Database
from shelfwise.store.tables import events, interactions, products

STEPS = ("rec_impression", "rec_click", "add_to_cart", "purchase")


def epoch_bucket(col: Any, backend: str, seconds: int) -> ColumnElement[Any]:
    """Whole ``seconds``-long buckets since the epoch, for an aware-UTC column."""
    if backend == "sqlite":
        return cast(func.strftime("%s", col), Integer) / seconds
    return cast(func.floor(extract("epoch", col) / seconds), BigInteger)


DIMENSIONS = ("placement", "category", "platform", "visitor", "time")


@dataclass
class FunnelRows:
    """Grouped counts, one entry per step and combination of the requested dimensions.

    A dimension that was not requested holds ``""`` (or 0 for ``bucket``).
    """

    step: npt.NDArray[np.int64]
    placement: npt.NDArray[np.str_]
    category: npt.NDArray[np.str_]
    platform: npt.NDArray[np.str_]
    returning: npt.NDArray[np.bool_]
    bucket: npt.NDArray[np.int64]
    lines: npt.NDArray[
        np.float64
    ]  # interaction rows (items shown, clicks, cart lines, order lines)
    events: npt.NDArray[np.float64]  # distinct events (slates, orders) within the group
    revenue: npt.NDArray[np.float64]
    out_of_stock: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return int(self.step.size)


def funnel_rows(
    db: Database,
    start: datetime,
    end: datetime,
    dims: tuple[str, ...] = DIMENSIONS,
    bucket_seconds: int = 3600,
    window_hours: float = DEFAULT_WINDOW_HOURS,
) -> FunnelRows:
    """Funnel counts in ``[start, end)`` grouped by step and ``dims`` (see DIMENSIONS);
    order lines by the attribution of ``monitoring.attribution`` with ``window_hours``."""
    unknown = set(dims) - set(DIMENSIONS)
    if unknown:
        raise ValueError(f"unknown dimensions {sorted(unknown)}")
    i, e, p = interactions, events, products
    imp, seen = events.alias("imp"), events.alias("seen")
    # Correlated look-ups through the rec_id and anonymous_id indexes: a join to
    # an aggregated subquery makes PostgreSQL rescan it per row when its
    # statistics are stale (a freshly loaded store), which is quadratic.
    served_placement = (
        select(func.min(imp.c.placement))
        .where(imp.c.rec_id == i.c.rec_id, imp.c.type == "rec_impression")
        .scalar_subquery()
    )
    first_seen = (
        select(func.min(seen.c.occurred_at))
        .where(seen.c.anonymous_id == i.c.anonymous_id)
        .scalar_subquery()
    )
    clicked = clicked_placement(i, db.backend, window_hours)
    bought = i.c.type == "purchase"
    day = 86_400
    exprs: dict[str, ColumnElement[Any]] = {
        "placement": func.coalesce(
            i.c.placement,
            served_placement,
            case((and_(bought, i.c.rec_id.is_(None)), clicked)),
            literal("(unknown)"),
        ),
        "category": func.coalesce(p.c.category_path, literal("(unknown)")),
        "platform": func.coalesce(e.c.platform, literal("(unknown)")),
        "visitor": case(
            (
                epoch_bucket(first_seen, db.backend, day)
                < epoch_bucket(i.c.occurred_at, db.backend, day),
                1,
            ),
            else_=0,
        ),
        "time": epoch_bucket(i.c.occurred_at, db.backend, bucket_seconds),
    }
    chosen = [exprs[d] for d in DIMENSIONS if d in dims]
    line_revenue = func.coalesce(i.c.quantity * i.c.unit_price, 0.0)
    oos = case((p.c.availability == "out_of_stock", 1), else_=0)
    joined = i.join(e, e.c.event_id == i.c.event_id).outerjoin(p, p.c.product_id == i.c.product_id)
    stmt = (
        select(
            i.c.type,
            *chosen,
            func.count(),
            func.count(func.distinct(i.c.event_id)),
            func.sum(line_revenue),
            func.sum(oos),
        )
        .select_from(joined)
        .where(
            i.c.occurred_at >= start,
            i.c.occurred_at < end,
            or_(
                i.c.type.in_(("rec_impression", "rec_click")),
                and_(i.c.type == "add_to_cart", i.c.rec_id.is_not(None)),
                and_(bought, or_(i.c.rec_id.is_not(None), clicked.is_not(None))),
            ),
        )
        .group_by(i.c.type, *chosen)
    )
    with db.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    n = len(rows)
    cols = list(zip(*rows, strict=True)) if rows else [() for _ in range(5 + len(chosen))]
    got: dict[str, tuple[Any, ...]] = {}
    k = 1
    for d in DIMENSIONS:
        if d in dims:
            got[d] = cols[k]
            k += 1

    def dim(name: str, default: Any, dtype: Any) -> npt.NDArray[Any]:
        return np.array(got[name] if name in got else [default] * n, dtype=dtype)

    return FunnelRows(
        step=np.array([STEPS.index(t) for t in cols[0]], dtype=np.int64),
        placement=dim("placement", "", str),
        category=dim("category", "", str),
        platform=dim("platform", "", str),
        returning=dim("visitor", 0, bool),
        bucket=dim("time", 0, np.int64),
        lines=np.array(cols[k], dtype=float),
        events=np.array(cols[k + 1], dtype=float),
        revenue=np.array([float(v or 0.0) for v in cols[k + 2]], dtype=float),
        out_of_stock=np.array([float(v or 0.0) for v in cols[k + 3]], dtype=float),
    )


@dataclass(frozen=True)
class SessionRows:
    """Per (interacted with recommendations, platform, returning): sessions, orders, revenue."""

    interacted: npt.NDArray[np.bool_]
    platform: npt.NDArray[np.str_]
    returning: npt.NDArray[np.bool_]
    sessions: npt.NDArray[np.float64]
    orders: npt.NDArray[np.float64]
    revenue: npt.NDArray[np.float64]


def session_rows(db: Database, start: datetime, end: datetime) -> SessionRows:
    """Sessions in the window, split by interaction with recommendations, platform, visitor.

    Three flat GROUP BYs (sessions, session revenue, first sighting) joined in numpy.
    """
    i, e = interactions, events
    interacted = or_(
        e.c.type == "rec_click", and_(e.c.type == "add_to_cart", e.c.rec_id.is_not(None))
    )
    sessions = (
        select(
            e.c.session_id,
            func.min(e.c.anonymous_id),
            epoch_bucket(func.min(e.c.occurred_at), db.backend, 86_400),
            func.coalesce(func.min(e.c.platform), literal("(unknown)")),
            func.max(case((interacted, 1), else_=0)),
            func.count(func.distinct(case((e.c.type == "purchase", e.c.event_id)))),
        )
        .where(e.c.occurred_at >= start, e.c.occurred_at < end, e.c.session_id.is_not(None))
        .group_by(e.c.session_id)
    )
    money = (
        select(i.c.session_id, func.sum(i.c.quantity * i.c.unit_price))
        .where(
            i.c.type == "purchase",
            i.c.occurred_at >= start,
            i.c.occurred_at < end,
            i.c.session_id.is_not(None),
        )
        .group_by(i.c.session_id)
    )
    first = (
        select(e.c.anonymous_id, epoch_bucket(func.min(e.c.occurred_at), db.backend, 86_400))
        .where(e.c.occurred_at < end)
        .group_by(e.c.anonymous_id)
    )
    with db.engine.connect() as conn:
        srows = conn.execute(sessions).all()
        revenue_of = {sid: float(v or 0.0) for sid, v in conn.execute(money)}
        first_day = {aid: int(d) for aid, d in conn.execute(first)}
    if not srows:
        z = np.zeros(0)
        return SessionRows(z.astype(bool), z.astype(str), z.astype(bool), z, z, z)
    sid, anon, day, platform, inter, orders = zip(*srows, strict=True)
    returning = np.array([first_day.get(a, d) < d for a, d in zip(anon, day, strict=True)])
    keys = np.array(
        [f"{int(x)}|{p}|{int(r)}" for x, p, r in zip(inter, platform, returning, strict=True)]
    )
    groups, g = np.unique(keys, return_inverse=True)
    parts = [k.split("|") for k in groups.tolist()]
    return SessionRows(
        interacted=np.array([p[0] == "1" for p in parts]),
        platform=np.array([p[1] for p in parts], dtype=str),
        returning=np.array([p[2] == "1" for p in parts]),
        sessions=np.bincount(g, minlength=groups.size).astype(float),
        orders=np.bincount(g, weights=np.array(orders, dtype=float), minlength=groups.size).astype(
            float
        ),
        revenue=np.bincount(
            g, weights=np.array([revenue_of.get(x, 0.0) for x in sid]), minlength=groups.size
        ).astype(float),
    )


def repeat_purchase_rate(db: Database, start: datetime, end: datetime) -> tuple[int, int]:
    """(buyers in the window, of whom bought at least twice up to the window's end)."""
    e = events
    buyer = func.coalesce(e.c.customer_id, e.c.anonymous_id)
    per = (
        select(
            buyer.label("buyer"),
            func.count().label("orders"),
            func.max(case((e.c.occurred_at >= start, 1), else_=0)).label("active"),
        )
        .where(e.c.type == "purchase", e.c.occurred_at < end)
        .group_by(buyer)
        .subquery("per")
    )
    stmt = select(func.count(), func.sum(case((per.c.orders >= 2, 1), else_=0))).where(
        per.c.active == 1
    )
    with db.engine.connect() as conn:
        buyers, repeat = conn.execute(stmt).one()
    return int(buyers or 0), int(repeat or 0)
