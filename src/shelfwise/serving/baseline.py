"""Degraded-mode sources: content and popularity computed from the catalog and events.

Used when no model bundle is loaded yet (a fresh install, a failed load): the
slate is still safe (the same rules apply) and still relevant enough, and it is
labelled ``mode: degraded``. Popularity counts
the last ``days`` of interactions (purchase 5, add-to-cart 3, view 1); with no
events at all, the catalog order stands in.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import case, func, select

from shelfwise.candidates.base import FloatArray, IntArray, Proposal, Reason, RecContext
from shelfwise.candidates.neighbours import drop_excluded, excluded
from shelfwise.catalog import CatalogSnapshot
from shelfwise.store.engine import Database
from shelfwise.store.tables import interactions
from shelfwise.store.types import utcnow

WEIGHTS = {"purchase": 5.0, "add_to_cart": 3.0, "rec_click": 1.0, "product_view": 1.0}
SEASONS_BY_MONTH = {
    1: ("winter",),
    2: ("winter",),
    3: ("spring",),
    4: ("spring", "easter"),
    5: ("spring", "summer"),
    6: ("summer",),
    7: ("summer",),
    8: ("summer",),
    9: ("autumn",),
    10: ("autumn", "halloween"),
    11: ("autumn", "winter", "christmas"),
    12: ("winter", "christmas"),
}
BASELINE_SOURCES = ("content", "popular", "seasonal", "session")


def seasons_at(now: datetime) -> tuple[str, ...]:
    return SEASONS_BY_MONTH[now.month]


def popularity_counts(
    db: Database, days: int = 90, now: datetime | None = None
) -> dict[str, float]:
    since = (now or utcnow()) - timedelta(days=days)
    weight = case(*[(interactions.c.type == t, w) for t, w in WEIGHTS.items()], else_=0.0)
    query = (
        select(interactions.c.product_id, func.sum(weight * interactions.c.quantity))
        .where(interactions.c.occurred_at >= since)
        .group_by(interactions.c.product_id)
    )
    with db.engine.connect() as conn:
        return {str(pid): float(score or 0.0) for pid, score in conn.execute(query)}


class BaselineTables:
    """Popularity order overall, per category and per season, over dense indices."""

    def __init__(self, snapshot: CatalogSnapshot, counts: dict[str, float]) -> None:
        self.snapshot = snapshot
        self.counts = counts
        self.n = n = len(snapshot)
        pop = np.zeros(n)
        for pid, c in counts.items():
            i = snapshot.vocab.get(pid)
            if i is not None:
                pop[i] = c
        self.pop = pop
        self.order: IntArray = np.lexsort((np.arange(n), -pop)).astype(np.int64)
        categories = snapshot.column("category")[self.order]
        by_cat = np.argsort(categories, kind="stable")
        cats, starts = np.unique(categories[by_cat], return_index=True)
        bounds = [*starts.tolist(), n]
        self.by_category: dict[int, IntArray] = {
            int(c): self.order[by_cat[bounds[j] : bounds[j + 1]]] for j, c in enumerate(cats)
        }
        seasons: dict[str, list[int]] = {}
        for i in self.order.tolist():
            for tag in snapshot.products[i].season_tags:
                seasons.setdefault(tag, []).append(i)
        self.by_season = {s: np.array(ix, dtype=np.int64) for s, ix in seasons.items()}
        # rank-based score in (0, 1]: comparable whether or not there are events
        self.rank_score: FloatArray = np.empty(n)
        self.rank_score[self.order] = 1.0 / (1.0 + np.arange(n) / 50.0)

    def current(self) -> BaselineTables:
        """These tables, rebuilt when the catalog has grown since they were built."""
        if len(self.snapshot) == self.n:
            return self
        return BaselineTables(self.snapshot, self.counts)


def _top(ranked: IntArray, k: int, exclude: frozenset[int]) -> IntArray:
    head = ranked[: k + len(exclude)]
    if exclude:
        head = head[drop_excluded(head, excluded(exclude))]
    return head[:k]


def _recent_views(ctx: RecContext, limit: int = 3) -> list[int]:
    seen: list[int] = []
    for e in reversed(ctx.session):
        if e.type in ("product_view", "rec_click", "add_to_cart") and e.item not in seen:
            seen.append(e.item)
            if len(seen) == limit:
                break
    return seen


class PopularitySource:
    name = "popular"

    def __init__(self, tables: BaselineTables) -> None:
        self.tables = tables

    def propose(self, ctx: RecContext, k: int) -> Proposal:
        t = self.tables = self.tables.current()
        items = _top(t.order, k, ctx.exclude)
        reason = Reason(self.name, "popular_in", label="the store")
        return Proposal(self.name, items, t.rank_score[items], (reason,) * len(items))


class SeasonalSource:
    name = "seasonal"

    def __init__(self, tables: BaselineTables) -> None:
        self.tables = tables

    def propose(self, ctx: RecContext, k: int) -> Proposal:
        t = self.tables = self.tables.current()
        for season in seasons_at(ctx.now):
            ranked = t.by_season.get(season)
            if ranked is not None and len(ranked):
                items = _top(ranked, k, ctx.exclude)
                reason = Reason(self.name, "seasonal", label=season)
                return Proposal(self.name, items, t.rank_score[items], (reason,) * len(items))
        return Proposal.empty(self.name)


class ContentSource:
    """Same category as the anchor, same brand first, then by popularity."""

    name = "content"
    kind = "similar_to"

    def __init__(self, tables: BaselineTables) -> None:
        self.tables = tables

    def anchors(self, ctx: RecContext) -> list[int]:
        return list(ctx.context_items[:3])

    def propose(self, ctx: RecContext, k: int) -> Proposal:
        t = self.tables = self.tables.current()
        parts: list[Proposal] = []
        anchors = [a for a in self.anchors(ctx) if a < t.n]
        for rank, anchor in enumerate(anchors):
            ranked = t.by_category.get(int(t.snapshot.category[anchor]))
            if ranked is None or t.snapshot.category[anchor] == 0:
                continue
            items = _top(ranked, k, ctx.exclude | {anchor})
            brand = t.snapshot.brand[items] == t.snapshot.brand[anchor]
            scores = (t.rank_score[items] + 0.5 * brand) / (1.0 + rank)
            reason = Reason(self.name, self.kind, anchor=anchor)
            parts.append(Proposal(self.name, items, scores, (reason,) * len(items)))
        if not parts:
            return Proposal.empty(self.name)
        if len(parts) == 1:
            return parts[0]
        items = np.concatenate([p.items for p in parts])
        scores = np.concatenate([p.scores for p in parts])
        reasons = [r for p in parts for r in p.reasons]
        _, first = np.unique(items, return_index=True)  # first anchor (most recent) wins
        return Proposal(
            self.name, items[first], scores[first], tuple(reasons[int(i)] for i in first)
        )


class SessionSource(ContentSource):
    """Because you viewed: content of the session's most recent views."""

    name = "session"
    kind = "because_you_viewed"

    def anchors(self, ctx: RecContext) -> list[int]:
        return _recent_views(ctx)


def baseline_sources(
    tables: BaselineTables,
) -> dict[str, PopularitySource | SeasonalSource | ContentSource]:
    return {
        "content": ContentSource(tables),
        "popular": PopularitySource(tables),
        "seasonal": SeasonalSource(tables),
        "session": SessionSource(tables),
    }
