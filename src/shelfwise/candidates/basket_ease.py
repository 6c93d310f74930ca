"""Basket EASE: what completes a cart, from a linear item-item model of baskets.

The closed form of EASE (Steck 2019) on the basket x item matrix of purchases
(binary; each basket optionally weighted by its age, halving every
``half_life_days``): ``P = (X'WX + lambda I)^-1``, ``B_ij = -P_ij / P_jj``. A
cart scores ``sum over its items i of B_ij``; unlike co-occurrence counts or a
cosine it discounts what the cart's other items already explain.

Only pairs that were really bought together are kept (``B_ij`` where some basket
holds both ``i`` and ``j``, and positive), so the reason "Often bought with
<cart item>" names an item that co-occurs with the proposal. The inverse is
dense: the model keeps the ``max_items`` items of the largest basket support
(at least ``min_support`` baskets); fitting holds about three ``n x n`` float64
arrays (5,000 items: ~600 MB), serving only the ``width`` best neighbours of
each item (a :class:`~shelfwise.candidates.neighbours.NeighbourTable`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from shelfwise.candidates.base import Proposal, RecContext
from shelfwise.candidates.config import BasketEaseConfig
from shelfwise.candidates.log import KIND_CODE, PURCHASE, InteractionLog
from shelfwise.candidates.neighbours import (
    NeighbourTable,
    ReasonCache,
    block_rows,
    excluded,
    gather,
    top_k,
)
from shelfwise.candidates.regression import gram_inverse


def fit_basket_ease(log: InteractionLog, config: BasketEaseConfig) -> NeighbourTable:
    n = log.n_items
    table = NeighbourTable(
        np.full((n, config.width), -1, dtype=np.int32), np.zeros((n, config.width), np.float32)
    )
    kinds = [PURCHASE, KIND_CODE["add_to_cart"]] if config.carts else [PURCHASE]
    buys = log.select(np.isin(log.kind, np.array(kinds, dtype=np.int8)))
    if not len(buys) or config.max_items == 0:
        return table
    baskets, row = np.unique(buys.basket, return_inverse=True)
    x = sp.csr_matrix(
        (np.ones(len(row)), (row, buys.item)), shape=(len(baskets), n), dtype=np.float64
    )
    x.sum_duplicates()
    x.data[:] = 1.0
    support = np.asarray(x.sum(axis=0)).ravel()
    ranked = np.argsort(-support, kind="stable")[: config.max_items]
    kept = np.sort(ranked[support[ranked] >= config.min_support])
    if len(kept) < 2:
        return table
    xk = x[:, kept]
    if config.half_life_days > 0:
        last = np.zeros(len(baskets))
        np.maximum.at(last, row, buys.at)
        age = (buys.at.max() - last) / 86400.0
        xk = sp.diags(np.exp2(-age / config.half_life_days)) @ xk
        gram = (xk.T @ (xk > 0).astype(np.float64)).toarray()
    else:
        gram = (xk.T @ xk).toarray()
    together = gram > 0
    gram[np.diag_indices(len(kept))] += config.regularization
    p = gram_inverse(gram)
    del gram
    b = p / -np.diag(p)[None, :]
    del p
    b[~together] = 0.0
    small = NeighbourTable(
        np.full((len(kept), config.width), -1, dtype=np.int32),
        np.zeros((len(kept), config.width), np.float32),
    )
    rows = np.arange(len(kept))
    chunk = block_rows(len(kept))
    for start in range(0, len(kept), chunk):
        part = rows[start : start + chunk]
        small.fill_dense(b[part], part)
    return small.remap(kept.astype(np.int64), n)


@dataclass(eq=False)
class BasketEaseSource:
    """EASE neighbours of the cart's and the viewed items; nothing without either."""

    table: NeighbourTable
    name: str = "basket_ease"
    _reasons: ReasonCache = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._reasons = ReasonCache(self.name, "often_bought_with")

    def propose(self, ctx: RecContext, k: int) -> Proposal:
        anchors = np.array(ctx.cart_items + ctx.context_items, dtype=np.int64)
        anchors = anchors[anchors < self.table.n_items]
        if not len(anchors):
            return Proposal.empty(self.name)
        got = gather(self.table, anchors, np.ones(len(anchors)), excluded(ctx.exclude))
        top = top_k(got.scores, k)
        return Proposal(self.name, got.items[top], got.scores[top], self._reasons(got.anchors[top]))


__all__ = ["BasketEaseSource", "fit_basket_ease"]
