"""Popularity per category with a trend and a seasonal component: the labelled fallback.

Scores are fixed at the end of the training window ``t``:
``base`` is the time-decayed weighted count, ``trend`` the rise of the last
``trend_days`` over the rate before, ``season`` the rate in the same weeks one
year earlier (``[t - 365d, t - 365d + horizon)``), zero when history is short.
Each is scaled to a maximum of 1 before they are mixed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from shelfwise.candidates.base import IntArray, Proposal, Reason, RecContext
from shelfwise.candidates.config import EventWeights, PopularConfig
from shelfwise.candidates.log import InteractionLog
from shelfwise.candidates.neighbours import drop_excluded, excluded

DAY = 86400.0


@lru_cache(maxsize=4096)
def _reason(source: str, code: int, label: str | None) -> Reason:
    return Reason(source, LABELS[code], label=label)


LABELS = ("popular_in", "trending_in", "seasonal")


def _scaled(counts: npt.NDArray[np.generic]) -> npt.NDArray[np.float64]:
    x: npt.NDArray[np.float64] = counts.astype(np.float64)
    top = float(x.max()) if len(x) else 0.0
    return x / top if top > 0 else x


@dataclass(frozen=True)
class Popularity:
    scores: npt.NDArray[np.float64]  # per item
    label: npt.NDArray[np.int8]  # index into LABELS: the component that dominates


def fit_popularity(log: InteractionLog, config: PopularConfig, weights: EventWeights) -> Popularity:
    t = log.end
    w = weights.array()[log.kind] * log.quantity.clip(1, 100) ** 0.5
    age = t - log.at
    n = log.n_items
    base = np.bincount(log.item, w * np.exp2(-age / (DAY * config.half_life_days)), minlength=n)
    recent = age < config.trend_days * DAY
    before = (age >= config.trend_days * DAY) & (age < 4 * config.trend_days * DAY)
    rate_now = np.bincount(log.item[recent], w[recent], minlength=n)
    rate_before = np.bincount(log.item[before], w[before], minlength=n) / 3
    trend = np.maximum(rate_now - rate_before, 0.0)
    ago = age - 365 * DAY
    season_rows = (ago <= 0) & (ago > -config.season_horizon_days * DAY)
    season = np.bincount(log.item[season_rows], w[season_rows], minlength=n)
    parts = np.stack(
        [
            _scaled(base),
            config.trend_weight * _scaled(trend),
            config.season_weight * _scaled(season),
        ]
    )
    return Popularity(parts.sum(axis=0), parts.argmax(axis=0).astype(np.int8))


@dataclass(eq=False)
class PopularSource:
    """Popular items in the category of what the shopper looks at, else across the store.

    Each reason names the item's own category. Its reasons say ``fallback`` only
    when a placement's chain uses it as one. The store's order and each category's
    are sorted once (on the first call), so a request reads a head slice of one
    instead of scoring the whole catalog.
    """

    popularity: Popularity
    category: npt.NDArray[np.int32]  # per item, 0 = none (CatalogSnapshot.category codes)
    category_names: tuple[str, ...]
    name: str = "popular"
    _orders: tuple[IntArray, dict[int, IntArray]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def _category_of(self, ctx: RecContext) -> int:
        seen = ctx.context_items + ctx.cart_items + tuple(e.item for e in ctx.session[::-1])
        for i in seen:
            if i < len(self.category) and self.category[i] > 0:
                return int(self.category[i])
        return 0

    def orders(self) -> tuple[IntArray, dict[int, IntArray]]:
        """Items with a positive score, best first (ties: by index), overall and per category."""
        if self._orders is None:
            scores = self.popularity.scores
            n = len(scores)
            order = np.lexsort((np.arange(n), -scores)).astype(np.int64)
            order = order[scores[order] > 0]
            cats = self.category[:n][order]
            by = np.argsort(cats, kind="stable")
            codes, starts = np.unique(cats[by], return_index=True)
            bounds = [*starts.tolist(), len(order)]
            per = {int(c): order[by[bounds[j] : bounds[j + 1]]] for j, c in enumerate(codes)}
            self._orders = (order, per)
        return self._orders

    def propose(self, ctx: RecContext, k: int) -> Proposal:
        scores = self.popularity.scores
        cat = self._category_of(ctx)
        everything, per_category = self.orders()
        banned = excluded(ctx.exclude)
        ranked = everything
        if cat:
            ranked = per_category.get(cat, everything[:0])
        top = _head(ranked, k, banned)
        if cat and len(top) < k:  # a small category: the store's best after it
            need = k - len(top)
            rest = everything[: need + len(banned) + len(ranked)]
            rest = rest[self.category[rest] != cat]
            top = np.r_[top, _head(rest, need, banned)]
        # Each item is labelled with its own category (the store's best after a small
        # category are not "popular in" the shopper's category).
        names = self.category_names
        codes = self.category[top].tolist() if len(self.category) else [0] * len(top)
        pairs = list(zip(self.popularity.label[top].tolist(), codes, strict=True))
        by_pair = {
            (c, code): _reason(self.name, c, names[code] if 0 < code < len(names) else None)
            for c, code in set(pairs)
        }
        reasons = tuple(map(by_pair.__getitem__, pairs))
        return Proposal(self.name, top.astype(np.int64), scores[top], reasons)


def _head(ranked: IntArray, k: int, banned: IntArray) -> IntArray:
    """The first ``k`` of ``ranked`` that are not ``banned``."""
    head = ranked[: k + len(banned)]
    return head[drop_excluded(head, banned)][:k]
