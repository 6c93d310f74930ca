"""The signal-quality report: is every segment of the store sending sound signals?

Segments are platform x browser x app version. For each, from the store:
event volumes per type; the funnel (sessions with a product view → with an
add-to-cart → with a purchase); purchases with no earlier add-to-cart in the
same session; duplicate, late and schema-violation rates; the catalog join rate.

Each rate is compared with the rest of the traffic by a two-sided test of two
proportions (Fisher's exact test when a cell is small); the p-values of every
(segment, metric) pair are controlled together with Benjamini-Hochberg at
``fdr``. A segment is flagged for a metric when the difference survives FDR
control, points the bad way, and is large enough to matter (``min_effect``).
Each flag carries an estimate of the revenue involved (see ``_revenue_at_stake``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from shelfwise.contracts.reconcile import JOINED, AliasTable, Catalog, classified_lines, listings
from shelfwise.contracts.useragent import parse_user_agent
from shelfwise.store.engine import Database
from shelfwise.store.tables import duplicate_events, events, interactions, quarantine

Segment = tuple[str, str, str]
LATE_AFTER = timedelta(hours=1)

# metric -> (numerator, denominator, True when a higher rate is worse)
# A segment's rate is tested once both it and the rest have this many of its
# denominator (sessions, purchases, events...): docs/events.md#signal-quality-report.
MIN_SESSIONS = 30

METRICS: dict[str, tuple[str, str, bool]] = {
    "view_to_cart": ("sessions_view_cart", "sessions_view", False),
    "cart_to_purchase": ("sessions_cart_purchase", "sessions_cart", False),
    "purchase_without_cart": ("purchases_without_cart", "purchases", True),
    "duplicate_rate": ("duplicates", "received", True),
    "late_rate": ("late", "events", True),
    "out_of_order_rate": ("out_of_order", "events", True),
    "schema_violation_rate": ("rejected", "received", True),
    "join_rate": ("joined_lines", "lines", False),
}


@dataclass
class SegmentStats:
    segment: Segment
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    volumes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    violations: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    revenue: float = 0.0
    revenue_without_cart: float = 0.0

    def rate(self, metric: str) -> float | None:
        num, den, _ = METRICS[metric]
        d = self.counts.get(den, 0)
        return self.counts.get(num, 0) / d if d else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "platform": self.segment[0],
            "browser": self.segment[1],
            "app_version": self.segment[2],
            "volumes": dict(sorted(self.volumes.items())),
            "counts": dict(sorted(self.counts.items())),
            "rates": {m: _round(self.rate(m)) for m in METRICS},
            "schema_violations": dict(sorted(self.violations.items())),
            "revenue": round(self.revenue, 2),
        }


@dataclass(frozen=True)
class Flag:
    segment: Segment
    metric: str
    rate: float
    rest_rate: float
    p_value: float
    q_value: float
    revenue_at_stake: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "segment": " / ".join(self.segment),
            "platform": self.segment[0],
            "browser": self.segment[1],
            "app_version": self.segment[2],
            "metric": self.metric,
            "rate": round(self.rate, 4),
            "rest_rate": round(self.rest_rate, 4),
            "p_value": float(f"{self.p_value:.3g}"),
            "q_value": float(f"{self.q_value:.3g}"),
            "revenue_at_stake": round(self.revenue_at_stake, 2),
        }


@dataclass
class QualityReport:
    segments: list[SegmentStats]
    flags: list[Flag]
    totals: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "totals": self.totals,
            "segments": [s.as_dict() for s in self.segments],
            "flags": [f.as_dict() for f in self.flags],
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _seg(platform: str | None, browser: str | None, version: str | None) -> Segment:
    return (platform or "unknown", browser or "unknown", version or "-")


def collect(db: Database) -> dict[Segment, SegmentStats]:
    """Read the store once and fill the per-segment counters."""
    out: dict[Segment, SegmentStats] = {}

    def of(seg: Segment) -> SegmentStats:
        s = out.get(seg)
        if s is None:
            s = out[seg] = SegmentStats(seg)
        return s

    with db.engine.connect() as conn:
        revenue = dict(
            conn.execute(
                select(
                    interactions.c.event_id,
                    func.sum(interactions.c.quantity * func.coalesce(interactions.c.unit_price, 0)),
                )
                .where(interactions.c.type == "purchase")
                .group_by(interactions.c.event_id)
            ).all()
        )
        rows = conn.execute(
            select(
                events.c.event_id,
                events.c.type,
                events.c.occurred_at,
                events.c.received_at,
                events.c.session_id,
                events.c.platform,
                events.c.browser,
                events.c.app_version,
            ).order_by(events.c.occurred_at)
        ).all()
        sessions: dict[tuple[Segment, str], dict[str, bool]] = {}
        for eid, etype, occurred, received, session, plat, browser, version in rows:
            s = of(_seg(plat, browser, version))
            s.volumes[etype] += 1
            s.counts["events"] += 1
            s.counts["received"] += 1
            if received - occurred > LATE_AFTER:
                s.counts["late"] += 1
            state = sessions.setdefault((s.segment, session or f"~{eid}"), {})
            if etype == "product_view":
                state["view"] = True
            elif etype == "add_to_cart":
                state["cart"] = True
            elif etype == "purchase":
                value = float(revenue.get(eid) or 0.0)
                s.counts["purchases"] += 1
                s.revenue += value
                state["purchase"] = True
                if not state.get("cart"):
                    s.counts["purchases_without_cart"] += 1
                    s.revenue_without_cart += value
        _count_out_of_order(rows, of)
        for (seg, _), st in sessions.items():
            s = out[seg]
            if st.get("view"):
                s.counts["sessions_view"] += 1
                s.counts["sessions_view_cart"] += int(bool(st.get("cart")))
            if st.get("cart"):
                s.counts["sessions_cart"] += 1
                s.counts["sessions_cart_purchase"] += int(bool(st.get("purchase")))
        for _eid, plat, browser, version, seen in conn.execute(
            select(
                duplicate_events.c.event_id,
                duplicate_events.c.platform,
                duplicate_events.c.browser,
                duplicate_events.c.app_version,
                duplicate_events.c.seen_count,
            )
        ):
            s = of(_seg(plat, browser, version))
            s.counts["duplicates"] += int(seen)
            s.counts["received"] += int(seen)
        for payload, reasons, seen in conn.execute(
            select(quarantine.c.payload, quarantine.c.reasons, quarantine.c.seen_count).where(
                ~quarantine.c.source.endswith(":rows")
            )
        ):
            s = of(_segment_of_raw(payload))
            s.counts["rejected"] += int(seen)
            s.counts["received"] += int(seen)
            for r in reasons:
                s.violations[f"{r['code']}:{r['field']}"] += int(seen)
        # The same as-of-the-event classification as `signals reconcile`.
        catalog = Catalog(listings(conn), AliasTable(db).all())
        for _pid, plat, browser, version, n, kind in classified_lines(
            conn, catalog, events.c.platform, events.c.browser, events.c.app_version
        ):
            s = of(_seg(plat, browser, version))
            s.counts["lines"] += n
            s.counts["joined_lines"] += n if kind in JOINED else 0
    return out


def _count_out_of_order(rows: Any, of: Any) -> None:
    """An event is out of order when its session already had a later event that
    arrived in an earlier delivery (an earlier ``received_at``)."""
    latest: dict[str, datetime] = {}  # session -> newest occurred_at delivered so far
    pending: dict[str, datetime] = {}
    current = None
    for _eid, _t, occurred, received, session, plat, browser, version in sorted(
        (r for r in rows if r[4]), key=lambda r: r[3]
    ):
        if received != current:
            for sess, at in pending.items():
                if sess not in latest or at > latest[sess]:
                    latest[sess] = at
            pending, current = {}, received
        if session in latest and occurred < latest[session]:
            of(_seg(plat, browser, version)).counts["out_of_order"] += 1
        if session not in pending or occurred > pending[session]:
            pending[session] = occurred


def _segment_of_raw(payload: Any) -> Segment:
    if not isinstance(payload, dict):
        return _seg(None, None, None)
    get = {
        k: payload.get(k) if isinstance(payload.get(k), str) else None
        for k in ("platform", "browser", "app_version", "os", "user_agent")
    }
    if get["user_agent"] and not (get["platform"] and get["browser"]):
        ua = parse_user_agent(get["user_agent"])
        get["platform"] = get["platform"] or ua.platform
        get["browser"] = get["browser"] or ua.browser
    return _seg(get["platform"], get["browser"], get["app_version"])


def _p_value(a: int, n: int, b: int, m: int) -> float:
    """Two-sided test that a/n and b/m share one proportion."""
    # scipy.stats is imported where it is used: it costs ~1 s of CPU at import, in
    # every CLI call and server worker, while only the signal report needs it.
    from scipy import stats

    table = [[a, n - a], [b, m - b]]
    pooled = (a + b) / (n + m)
    if min(n * pooled, n * (1 - pooled), m * pooled, m * (1 - pooled)) < 5:
        return float(stats.fisher_exact(table).pvalue)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n + 1 / m))
    if se == 0:
        return 1.0
    z = (a / n - b / m) / se
    return float(2 * stats.norm.sf(abs(z)))


def _revenue_at_stake(s: SegmentStats, metric: str, rate: float, rest: float) -> float:
    """Purchases without a cart: the revenue of exactly those purchases. Funnel and
    join metrics: the segment's revenue scaled by the relative shortfall. Rates of
    bad events: the segment's revenue scaled by the excess share."""
    if metric == "purchase_without_cart":
        return s.revenue_without_cart
    if metric in ("view_to_cart", "cart_to_purchase", "join_rate"):
        return s.revenue * (rest - rate) / rest if rest > 0 else 0.0
    return s.revenue * max(rate - rest, 0.0)


def flag_segments(
    segs: Iterable[SegmentStats],
    fdr: float = 0.05,
    min_effect: float = 0.05,
    min_n: int = MIN_SESSIONS,
) -> list[Flag]:
    segs = list(segs)
    tests: list[tuple[SegmentStats, str, float, float, float]] = []
    for metric, (num, den, higher_is_worse) in METRICS.items():
        total_a = sum(s.counts.get(num, 0) for s in segs)
        total_n = sum(s.counts.get(den, 0) for s in segs)
        for s in segs:
            a, n = s.counts.get(num, 0), s.counts.get(den, 0)
            b, m = total_a - a, total_n - n
            if n < min_n or m < min_n:
                continue
            rate, rest = a / n, b / m
            worse = rate - rest if higher_is_worse else rest - rate
            tests.append((s, metric, rate, rest, _p_value(a, n, b, m) if worse > 0 else 1.0))
    if not tests:
        return []
    from scipy import stats  # see _p_value

    qs = stats.false_discovery_control([t[4] for t in tests], method="bh")
    flags: list[Flag] = []
    for (s, metric, rate, rest, p), q in zip(tests, qs, strict=True):
        higher_is_worse = METRICS[metric][2]
        worse = rate - rest if higher_is_worse else rest - rate
        if q <= fdr and worse >= min_effect:
            flags.append(
                Flag(
                    s.segment,
                    metric,
                    rate,
                    rest,
                    p,
                    float(q),
                    _revenue_at_stake(s, metric, rate, rest),
                )
            )
    return sorted(flags, key=lambda f: (f.q_value, f.segment, f.metric))


def quality_report(
    db: Database, fdr: float = 0.05, min_effect: float = 0.05, min_n: int = MIN_SESSIONS
) -> QualityReport:
    stats_by_seg = collect(db)
    segs = sorted(stats_by_seg.values(), key=lambda s: -s.counts.get("events", 0))
    totals: dict[str, int] = defaultdict(int)
    for s in segs:
        for k, v in s.counts.items():
            totals[k] += v
    flags = flag_segments(segs, fdr, min_effect, min_n)
    return QualityReport(segs, flags, dict(sorted(totals.items())))
