"""What the request path is assembled from: the sources a placement may name, and the
degraded mode's candidates (the Runtime wires the rest).

Degraded mode - no model bundle yet, or none that loads - is a fallback chain
over the ordinary sources of ``shelfwise.candidates`` (content, session,
popular, seasonal), standing on tables made from the catalog and the store's
recent popularity instead of a training run (``candidates/catalog.py``). The
slate is as safe as any (the same rules apply) and labelled ``mode: degraded``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import case, func, select
from sqlalchemy.exc import SQLAlchemyError

from shelfwise.candidates.base import IntArray, Proposal, RecContext, Source
from shelfwise.candidates.blend import CandidateBlend
from shelfwise.candidates.buyagain import NO_ITEMS
from shelfwise.candidates.catalog import (
    SeasonalSource,
    category_neighbours,
    no_history,
    popularity_order,
    rank_popularity,
)
from shelfwise.candidates.config import SOURCE_NAMES, PlacementChain, SourcesConfig
from shelfwise.candidates.content import ContentSource
from shelfwise.candidates.popular import PopularSource
from shelfwise.candidates.session import SessionSource
from shelfwise.catalog import CatalogSnapshot
from shelfwise.store import Database
from shelfwise.store.tables import interactions
from shelfwise.store.types import utcnow

log = logging.getLogger("shelfwise.pipeline")

# Sources a model bundle provides (``shelfwise.candidates``); a placement may
# name these and the degraded mode's ``seasonal``.
MODEL_SOURCES = SOURCE_NAMES
DEGRADED_SOURCES = ("content", "popular", "seasonal", "session")
WEIGHTS = {"purchase": 5.0, "add_to_cart": 3.0, "rec_click": 1.0, "product_view": 1.0}
NEIGHBOURS = 200  # per item, in the degraded content table


def known_sources() -> set[str]:
    return {*DEGRADED_SOURCES, *MODEL_SOURCES}


def popularity_counts(
    db: Database, days: int = 90, now: datetime | None = None
) -> dict[str, float]:
    """Weighted event counts of the last ``days`` per product (purchase 5, cart 3, view 1)."""
    since = (now or utcnow()) - timedelta(days=days)
    weight = case(*[(interactions.c.type == t, w) for t, w in WEIGHTS.items()], else_=0.0)
    query = (
        select(interactions.c.product_id, func.sum(weight * interactions.c.quantity))
        .where(interactions.c.occurred_at >= since)
        .group_by(interactions.c.product_id)
    )
    with db.engine.connect() as conn:
        return {str(pid): float(score or 0.0) for pid, score in conn.execute(query)}


class DegradedBlend:
    """The degraded mode's candidate blend over this snapshot, made on first use and
    again when the catalog grows (new products join the tables).

    ``counts`` reads the store's popularity (:func:`popularity_counts`, a ``GROUP BY``
    over 90 days of events: seconds on a large store): once, on first use. A worker
    that serves a model bundle never needs it (the bundle's sources stand in), so it
    starts without it."""

    def __init__(self, snapshot: CatalogSnapshot, counts: Callable[[], dict[str, float]]) -> None:
        self.snapshot = snapshot
        self.read_counts = counts
        self.counts: dict[str, float] | None = None  # read on first use
        self.n = -1
        self.blend: CandidateBlend | None = None

    def current(self) -> CandidateBlend:
        snap = self.snapshot
        if self.blend is not None and len(snap) == self.n:
            return self.blend
        if self.counts is None:
            self.counts = self.read_counts()
        n = len(snap)
        weight = np.zeros(n)
        for pid, c in self.counts.items():
            i = snap.vocab.get(pid)
            if i is not None:
                weight[i] = c
        order, score = popularity_order(weight)
        category, brand = snap.column("category"), snap.column("brand")
        table = category_neighbours(order, score, category, brand, NEIGHBOURS)  # type: ignore[arg-type]
        config = SourcesConfig()
        sources: dict[str, Source] = {
            "content": ContentSource(table, no_history()),
            "session": SessionSource(table, config.session, config.events),
            "popular": PopularSource(
                rank_popularity(score),
                category,  # type: ignore[arg-type]
                tuple(snap.categories.values),
            ),
            "seasonal": SeasonalSource.of([p.season_tags for p in snap.products], order, score),
        }
        self.blend = CandidateBlend(sources, config)
        self.n = n
        return self.blend

    def propose(self, ctx: RecContext, k: int, chain: PlacementChain) -> Proposal:
        return self.current().propose(ctx, k, chain)

    def owned(self, person_id: str | None) -> IntArray:
        """Nothing: without a bundle there is no purchase history (and asking must not
        build the degraded tables)."""
        return NO_ITEMS

    def seen(self, person_id: str | None) -> IntArray:
        """Nothing, for the same reason."""
        return NO_ITEMS


def degraded_blend(db: Database, snapshot: CatalogSnapshot) -> DegradedBlend:
    """The degraded mode's blend: popularity from the store (read on first use), the
    catalog order when the store cannot say."""

    def counts() -> dict[str, float]:
        try:
            return popularity_counts(db)
        except SQLAlchemyError as e:
            log.warning("popularity unavailable (%s): degraded mode uses the catalog order", e)
            return {}

    return DegradedBlend(snapshot, counts)
