"""Substitutes of the viewed product: what a shopper could buy *instead* of it.

The ``product_similar`` placement's source. A substitute shares the viewed
product's category (or, weighted down, a sibling category: the same first path
segment), sits in a price band around it, and looks like it (content
similarity: title words, attributes, brand) or was looked at by the same
shoppers (co-view). Candidates come from the content and co-view neighbours of
the viewed product, then from the rest of its category (cheapest price distance
first), so a product with no neighbours (new, retired, sold out) still gets a
slate of its own category. Nothing from an unrelated category is proposed, ever.

The score of ``j`` for the viewed ``a``::

    (max(content(a, j) - hub_penalty * hub(j), 0) + coview_weight * coview(a, j)
       + category_floor)
      * relation(a, j) * exp(-0.5 * (log(p_j / p_a) / log(price_band)) ** 2)

``relation`` is 1 for the same category and ``sibling_weight`` for a sibling
(siblings only help out a category with fewer than ``sibling_fill`` candidates);
items dearer or cheaper than ``max_price_ratio`` times the anchor are dropped.
``hub(j)`` is ``j``'s mean similarity to its ten nearest look-alikes: an item
that looks like everything (a hub) would otherwise fill every slate of its
category (the correction of cross-domain similarity local scaling, CSLS).
The reason is ``similar_to`` the viewed product: true by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from shelfwise.candidates.base import FloatArray, IntArray, Proposal, RecContext
from shelfwise.candidates.config import SubstitutesConfig
from shelfwise.candidates.neighbours import (
    NeighbourTable,
    ReasonCache,
    drop_excluded,
    excluded,
    top_k,
)


def category_parents(names: tuple[str, ...]) -> npt.NDArray[np.int32]:
    """Per category code, a code of its first path segment (0 for none): siblings
    share it (``kitchen/cookware`` and ``kitchen/utensils``)."""
    heads: dict[str, int] = {"": 0}
    return np.array(
        [heads.setdefault(n.split("/", 1)[0] if "/" in n else "", len(heads)) for n in names],
        dtype=np.int32,
    )


def price_fit(prices: FloatArray, anchor_price: float, band: float) -> FloatArray:
    """How well each price fits the anchor's: 1 at the same price, ~0.61 at ``band``
    times (or 1/band), 0.7 when either price is unknown."""
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.log(prices / anchor_price) / np.log(band)
    fit = np.exp(-0.5 * spread**2)
    out: FloatArray = np.where(np.isfinite(fit), fit, 0.7)
    return out


@dataclass(eq=False)
class SubstitutesSource:
    content: NeighbourTable
    coview: NeighbourTable
    category: npt.NDArray[np.int32]  # per item (Artifacts.category)
    category_names: tuple[str, ...]
    price: FloatArray  # per item, NaN when unknown
    config: SubstitutesConfig
    # Its proposal at depth k is ``top_k`` of scores that do not depend on k
    # (``candidates.base.shallower``: a deeper proposal gives the shallower one).
    prefix_exact: ClassVar[bool] = True
    name: str = "substitutes"
    _reasons: ReasonCache = field(init=False, repr=False, compare=False)
    _parent: npt.NDArray[np.int32] = field(init=False, repr=False, compare=False)
    _members: dict[int, IntArray] = field(init=False, repr=False, compare=False)
    _hub: FloatArray | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        self._reasons = ReasonCache(self.name, "similar_to")
        self._parent = category_parents(self.category_names)
        self._members = {}
        self._hub: FloatArray | None = None

    def _hubness(self) -> FloatArray:
        """Per item, the mean content similarity to its ten nearest neighbours."""
        got = self._hub
        if got is None:
            top = np.asarray(self.content.scores[:, :10], dtype=np.float64)
            got = self._hub = np.zeros(len(self.category))
            n = min(len(got), len(top))
            got[:n] = top[:n].mean(axis=1)
        return got

    def members(self, code: int) -> IntArray:
        got = self._members.get(code)
        if got is None:
            got = self._members[code] = np.flatnonzero(self.category == code).astype(np.int64)
        return got

    def propose(self, ctx: RecContext, k: int) -> Proposal:
        anchors = [a for a in ctx.context_items if a < len(self.category)]
        if not anchors:
            return Proposal.empty(self.name)
        a = anchors[0]  # the viewed product
        cat = int(self.category[a])
        if cat == 0:
            return Proposal.empty(self.name)
        c = self.config
        parts = [self.members(cat)]
        for table, weight in ((self.content, 1.0), (self.coview, c.coview_weight)):
            if a < table.n_items and weight > 0:
                items, _ = table.of(a)
                parts.append(items)
        items = np.unique(np.concatenate(parts))
        items = items[(items != a) & (items < len(self.category))]
        banned = excluded(ctx.exclude)
        if len(banned):
            items = items[drop_excluded(items, banned)]
        rel = np.zeros(len(items))
        codes = self.category[items]
        rel[codes == cat] = 1.0
        sibling = (
            (codes != cat) & (self._parent[codes] == self._parent[cat]) & (self._parent[cat] > 0)
        )
        if int((codes == cat).sum()) < c.sibling_fill:  # a small category: siblings help out
            rel[sibling] = c.sibling_weight
        sim = self._similarity(self.content, a, items)
        if c.hub_penalty > 0:  # CSLS-style: a look-alike of everything says little
            sim = np.maximum(sim - c.hub_penalty * self._hubness()[items], 0.0)
        sim = c.category_floor + sim
        if c.coview_weight > 0:
            coview = self._similarity(self.coview, a, items)
            top = coview.max(initial=0.0)
            sim = sim + c.coview_weight * (coview / top if top > 0 else coview)
        anchor_price = float(self.price[a]) if a < len(self.price) else float("nan")
        prices = self.price[items]
        fit = price_fit(prices, anchor_price, c.price_band)
        ratio = prices / anchor_price
        in_band = ~((ratio > c.max_price_ratio) | (ratio < 1.0 / c.max_price_ratio))
        score = sim * rel * fit * in_band
        keep = score > 0
        items, score = items[keep], score[keep]
        order = top_k(score, k)
        return Proposal(
            self.name,
            items[order],
            score[order],
            self._reasons(np.full(len(order), a, dtype=np.int64)),
        )

    @staticmethod
    def _similarity(table: NeighbourTable, a: int, items: IntArray) -> FloatArray:
        """``table``'s score of each of ``items`` as a neighbour of ``a`` (0 if absent)."""
        out = np.zeros(len(items))
        if a >= table.n_items:
            return out
        nb, sc = table.of(a)
        if not len(nb):
            return out
        order = np.argsort(nb)
        nb, sc = nb[order], sc[order]
        pos = np.minimum(np.searchsorted(nb, items), len(nb) - 1)
        hit = nb[pos] == items
        out[hit] = sc[pos[hit]]
        return out
