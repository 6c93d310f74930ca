"""Business metrics of the recommendations, by placement x category x segment x time.

Revenue and orders are *revenue from recommendations* by the one definition of
:mod:`shelfwise.monitoring.attribution`, whose window every report states.

Counts come from one SQL aggregation (``monitoring.query``); rates, roll-ups
and category depth are numpy over those groups. Revenue per session and order
value are compared between sessions that interacted with recommendations and
sessions that did not: that comparison is *descriptive*, not causal (shoppers
who click recommendations differ from those who do not); the experiments area
measures causal lift.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import numpy.typing as npt

from shelfwise.monitoring.attribution import DEFAULT_WINDOW_HOURS, definition
from shelfwise.monitoring.decisions import DecisionLogReader, EmptyDecisionLog
from shelfwise.monitoring.query import (
    DIMENSIONS,
    FunnelRows,
    funnel_rows,
    repeat_purchase_rate,
    session_rows,
)
from shelfwise.monitoring.series import HourlySeries, floor_hour
from shelfwise.store.engine import Database

Grain = Literal["hour", "day"]
GRAIN_SECONDS: dict[str, int] = {"hour": 3600, "day": 86_400}


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


@dataclass(frozen=True)
class MetricRow:
    placement: str
    category: str
    platform: str
    visitor: str  # "new" | "returning" | ""
    period_start: datetime | None
    impressions: int
    clicks: int
    add_to_carts: int
    orders: int
    revenue: float
    out_of_stock_impressions: int

    @property
    def ctr(self) -> float | None:
        return _ratio(self.clicks, self.impressions)

    @property
    def add_to_cart_rate(self) -> float | None:
        return _ratio(self.add_to_carts, self.impressions)

    @property
    def aov(self) -> float | None:
        return _ratio(self.revenue, self.orders)

    @property
    def out_of_stock_share(self) -> float | None:
        return _ratio(self.out_of_stock_impressions, self.impressions)

    @property
    def revenue_per_mille(self) -> float | None:
        r = _ratio(self.revenue, self.impressions)
        return None if r is None else 1000 * r

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        for name in ("ctr", "add_to_cart_rate", "aov", "out_of_stock_share", "revenue_per_mille"):
            out[name] = getattr(self, name)
        return out


@dataclass(frozen=True)
class SessionGroup:
    interacted: bool
    sessions: int
    orders: int
    revenue: float

    @property
    def revenue_per_session(self) -> float | None:
        return _ratio(self.revenue, self.sessions)

    @property
    def aov(self) -> float | None:
        return _ratio(self.revenue, self.orders)

    def as_dict(self) -> dict[str, object]:
        return {
            **asdict(self),
            "revenue_per_session": self.revenue_per_session,
            "aov": self.aov,
        }


@dataclass(frozen=True)
class PlacementServing:
    placement: str
    fallback_share: float | None
    catalog_join_rate: float | None


@dataclass
class MetricsReport:
    start: datetime
    end: datetime
    by: tuple[str, ...]
    grain: Grain
    rows: list[MetricRow]
    total: MetricRow
    sessions: list[SessionGroup]
    buyers: int
    repeat_buyers: int
    serving: list[PlacementServing] = field(default_factory=list)
    attribution_window_hours: float = DEFAULT_WINDOW_HOURS
    note: str = (
        "Revenue of sessions that interacted with recommendations vs not: every line of"
        " their orders, recommended or not; descriptive, not causal."
    )

    @property
    def attribution(self) -> str:
        """The definition of the revenue figures (rows, total), window stated."""
        return definition(self.attribution_window_hours)

    @property
    def repeat_purchase_rate(self) -> float | None:
        return _ratio(self.repeat_buyers, self.buyers)


def _top(categories: npt.NDArray[np.str_], depth: int) -> npt.NDArray[np.str_]:
    uniq, inv = np.unique(categories, return_inverse=True)
    cut = np.array(["/".join(c.split("/")[:depth]) for c in uniq], dtype=str)
    return cut[inv] if uniq.size else categories


def _rollup(f: FunnelRows, by: tuple[str, ...], bucket_seconds: int) -> list[MetricRow]:
    if len(f) == 0:
        return []
    columns = {
        "placement": f.placement,
        "category": f.category,
        "platform": f.platform,
        "visitor": f.returning.astype(np.int64),
        "time": f.bucket,
    }
    codes = [np.unique(columns[d], return_inverse=True) for d in by]
    if codes:
        shape = tuple(len(u) for u, _ in codes)
        flat = np.ravel_multi_index(tuple(inv for _, inv in codes), shape)
        groups, g = np.unique(flat, return_inverse=True)
    else:
        groups, g = np.zeros(1, dtype=np.int64), np.zeros(len(f), dtype=np.int64)
        shape = ()
    n = groups.size

    def total(values: npt.NDArray[np.float64], step: int) -> npt.NDArray[np.float64]:
        m = f.step == step
        out: npt.NDArray[np.float64] = np.bincount(g[m], weights=values[m], minlength=n).astype(
            float
        )
        return out

    imps, clicks = total(f.lines, 0), total(f.lines, 1)
    carts, orders = total(f.lines, 2), total(f.events, 3)
    revenue, oos = total(f.revenue, 3), total(f.out_of_stock, 0)
    idx = np.unravel_index(groups, shape) if codes else ()
    rows: list[MetricRow] = []
    for k in range(n):
        val = {d: codes[j][0][idx[j][k]] for j, d in enumerate(by)}
        bucket = val.get("time")
        rows.append(
            MetricRow(
                placement=str(val.get("placement", "")),
                category=str(val.get("category", "")),
                platform=str(val.get("platform", "")),
                visitor=("returning" if val["visitor"] else "new") if "visitor" in val else "",
                period_start=(
                    datetime.fromtimestamp(int(bucket) * bucket_seconds, UTC)
                    if bucket is not None
                    else None
                ),
                impressions=int(imps[k]),
                clicks=int(clicks[k]),
                add_to_carts=int(carts[k]),
                orders=int(orders[k]),
                revenue=round(float(revenue[k]), 2),
                out_of_stock_impressions=int(oos[k]),
            )
        )
    return rows


def compute_metrics(
    db: Database,
    start: datetime,
    end: datetime,
    by: tuple[str, ...] = ("placement",),
    grain: Grain = "day",
    category_depth: int = 1,
    decisions: DecisionLogReader | None = None,
    window_hours: float = DEFAULT_WINDOW_HOURS,
) -> MetricsReport:
    """Metrics for ``[start, end)`` grouped by ``by`` (a subset of DIMENSIONS, in that order);
    revenue attributed with ``window_hours`` (the setting ``attribution_window_hours``)."""
    by = tuple(d for d in DIMENSIONS if d in by)
    seconds = GRAIN_SECONDS[grain]
    f = funnel_rows(db, start, end, by, seconds, window_hours)
    if "category" in by:
        f.category = _top(f.category, category_depth)
    rows = _rollup(f, by, seconds)
    total = _rollup(funnel_rows(db, start, end, (), seconds, window_hours), (), seconds)
    s = session_rows(db, start, end)
    sessions = [
        SessionGroup(
            interacted=flag,
            sessions=int(s.sessions[s.interacted == flag].sum()),
            orders=int(s.orders[s.interacted == flag].sum()),
            revenue=round(float(s.revenue[s.interacted == flag].sum()), 2),
        )
        for flag in (True, False)
    ]
    buyers, repeat = repeat_purchase_rate(db, start, end)
    served = (decisions or EmptyDecisionLog()).served(start, end)
    return MetricsReport(
        start=start,
        end=end,
        by=by,
        grain=grain,
        rows=rows,
        total=total[0] if total else MetricRow("", "", "", "", None, 0, 0, 0, 0, 0.0, 0),
        sessions=sessions,
        buyers=buyers,
        repeat_buyers=repeat,
        serving=[
            PlacementServing(name, c.fallback_share, c.join_rate)
            for name, c in sorted(served.items())
        ],
        attribution_window_hours=window_hours,
    )


def hourly_series(
    db: Database, start: datetime, end: datetime, window_hours: float = DEFAULT_WINDOW_HOURS
) -> HourlySeries:
    """Hourly placement x top-level category series for ``[start, end)`` (the alerts' input)."""
    start, end = floor_hour(start), floor_hour(end)
    f = funnel_rows(db, start, end, ("placement", "category", "time"), 3600, window_hours)
    f.category = _top(f.category, 1)
    keys = sorted(set(zip(f.placement.tolist(), f.category.tolist(), strict=True)))
    hours = int((end - start).total_seconds() // 3600)
    series = HourlySeries.empty(keys, start, hours)
    if not keys:
        return series
    index = {k: j for j, k in enumerate(keys)}
    s = np.array([index[k] for k in zip(f.placement.tolist(), f.category.tolist(), strict=True)])
    t = f.bucket - int(start.timestamp()) // 3600
    ok = (t >= 0) & (t < hours)
    for step, target, values in (
        (0, series.impressions, f.lines),
        (1, series.clicks, f.lines),
        (3, series.orders, f.events),
        (3, series.revenue, f.revenue),
    ):
        m = ok & (f.step == step)
        np.add.at(target, (s[m], t[m]), values[m])
    return series
