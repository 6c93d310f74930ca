"""What the sources stand on without a model bundle: tables made from the catalog alone.

Degraded mode (a fresh install, a bundle that failed to load) serves the
ordinary sources of this package over tables that need no training:

- :func:`category_neighbours`: each item's neighbours are the most popular
  items of its category, those of its brand first, so ``ContentSource``
  ("similar to") and ``SessionSource`` ("because you viewed") read it like a
  fitted neighbour table;
- :func:`rank_popularity`: a popularity order (recent weighted event counts,
  else the catalog order) as ``PopularSource`` reads it, every item scored in
  (0, 1];
- :class:`SeasonalSource`: the products tagged with the season of the
  request's month, most popular first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

from shelfwise.candidates.base import FloatArray, IntArray, Proposal, Reason, RecContext
from shelfwise.candidates.history import PersonHistory
from shelfwise.candidates.neighbours import NeighbourTable, drop_excluded, excluded
from shelfwise.candidates.popular import Popularity

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
BRAND_BONUS = 0.5  # a neighbour of the anchor's brand comes before the category's others
_CHUNK = 2048


def seasons_at(now: datetime) -> tuple[str, ...]:
    return SEASONS_BY_MONTH[now.month]


def popularity_order(weight: FloatArray) -> tuple[IntArray, FloatArray]:
    """Items most popular first (ties: catalog order), and each one's rank score in (0, 1]."""
    n = len(weight)
    order: IntArray = np.lexsort((np.arange(n), -weight)).astype(np.int64)
    score: FloatArray = np.empty(n)
    score[order] = 1.0 / (1.0 + np.arange(n) / 50.0)
    return order, score


def rank_popularity(score: FloatArray) -> Popularity:
    """A ``Popularity`` of rank scores (every component "popular in")."""
    return Popularity(score, np.zeros(len(score), np.int8))


def category_neighbours(
    order: IntArray,
    score: FloatArray,
    category: npt.NDArray[np.int32],
    brand: npt.NDArray[np.int32],
    width: int,
) -> NeighbourTable:
    """Per item, the ``width`` most popular items of its category (its brand first);
    items without a category have none. A handful of array operations whatever the size."""
    n = len(order)
    table = NeighbourTable(
        np.full((n, width), -1, dtype=np.int32), np.zeros((n, width), np.float32)
    )
    if n == 0:
        return table
    cat = category[order]
    by_cat = np.argsort(cat, kind="stable")  # within a category: popularity order
    members = order[by_cat]
    cats, starts, sizes = np.unique(cat[by_cat], return_index=True, return_counts=True)
    # the category's top width + 1 (one may be the item itself), -1 padded
    top = np.full((int(cats.max()) + 1, width + 1), -1, dtype=np.int64)
    for c, s, size in zip(cats.tolist(), starts.tolist(), sizes.tolist(), strict=True):
        if c:
            head = members[s : s + min(size, width + 1)]
            top[c, : len(head)] = head
    for lo in range(0, n, _CHUNK):  # bounded memory for large catalogs
        ix = np.arange(lo, min(n, lo + _CHUNK))
        rows = top[category[ix]]
        valid = (rows >= 0) & (rows != ix[:, None])
        picked = np.where(valid, rows, 0)
        same_brand = (brand[picked] == brand[ix, None]) & (brand[ix, None] != 0)
        value = np.where(valid, score[picked] + BRAND_BONUS * same_brand, -np.inf)
        best = np.argsort(-value, axis=1, kind="stable")[:, :width]
        chosen = np.take_along_axis(value, best, axis=1)
        keep = np.isfinite(chosen)
        table.items[ix] = np.where(keep, np.take_along_axis(rows, best, axis=1), -1)
        table.scores[ix] = np.where(keep, chosen, 0.0)
    return table


def no_history() -> PersonHistory:
    """Nobody's history: degraded mode knows people by their live session only."""
    items, values = np.zeros(0, np.int64), np.zeros(0, np.float64)
    return PersonHistory((), np.zeros(1, np.int64), items, values, values, values)


@dataclass(eq=False)
class SeasonalSource:
    """The products tagged with a season of the request's month, most popular first."""

    by_season: dict[str, IntArray]  # season tag -> items, most popular first
    score: FloatArray  # rank score per item
    name: str = "seasonal"

    @classmethod
    def of(
        cls, tags: Sequence[Sequence[str]], order: IntArray, score: FloatArray
    ) -> SeasonalSource:
        seasons: dict[str, list[int]] = {}
        for i in order.tolist():
            for tag in tags[i]:
                seasons.setdefault(tag, []).append(i)
        return cls({s: np.array(ix, dtype=np.int64) for s, ix in seasons.items()}, score)

    def propose(self, ctx: RecContext, k: int) -> Proposal:
        for season in seasons_at(ctx.now):
            ranked = self.by_season.get(season)
            if ranked is None or not len(ranked):
                continue
            head = ranked[: k + len(ctx.exclude)]
            if ctx.exclude:
                head = head[drop_excluded(head, excluded(ctx.exclude))]
            items = head[:k]
            reason = Reason(self.name, "seasonal", label=season)
            return Proposal(self.name, items, self.score[items], (reason,) * len(items))
        return Proposal.empty(self.name)
