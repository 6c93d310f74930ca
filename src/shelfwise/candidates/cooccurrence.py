"""Item-to-item co-occurrence: bought (viewed, carted) together in a basket or by one person.

Each interaction counts with its event type's weight and an exponential time
decay. The similarity of ``i`` to ``j`` is the weighted co-occurrence divided by
``C_ii^(1-s) * C_jj^s``: ``s`` (significance) damps neighbours that co-occur
with everything merely because they are popular (``s = 0.5`` is the cosine).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from shelfwise.candidates.base import Proposal, RecContext
from shelfwise.candidates.config import CooccurrenceConfig, EventWeights
from shelfwise.candidates.history import PersonHistory
from shelfwise.candidates.log import InteractionLog
from shelfwise.candidates.neighbours import (
    NeighbourTable,
    ReasonCache,
    excluded,
    gather,
    personal_reasons,
    top_k,
)


def interaction_matrix(
    log: InteractionLog, rows: np.ndarray, n_rows: int, weights: EventWeights, half_life_days: float
) -> sp.csr_matrix:
    """``log1p`` of the decayed, weighted interactions of each (row key, item)."""
    w = weights.array()[log.kind] * np.exp2(-(log.end - log.at) / (86400.0 * half_life_days))
    m = sp.csr_matrix((w, (rows, log.item)), shape=(n_rows, log.n_items))
    m.sum_duplicates()
    m.data = np.log1p(m.data)
    return m


def fit_cooccurrence(
    log: InteractionLog, config: CooccurrenceConfig, weights: EventWeights
) -> NeighbourTable:
    n_baskets = int(log.basket.max()) + 1 if len(log) else 0
    c = sp.csr_matrix((log.n_items, log.n_items))
    if config.session_weight > 0 and n_baskets:
        b = interaction_matrix(log, log.basket, n_baskets, weights, config.half_life_days)
        c = c + config.session_weight * (b.T @ b)
    if config.person_weight > 0 and log.n_people:
        p = interaction_matrix(log, log.person, log.n_people, weights, config.half_life_days)
        c = c + config.person_weight * (p.T @ p)
    c = sp.csr_matrix(c)
    diag = c.diagonal()
    s = config.significance
    rows = np.repeat(np.arange(c.shape[0]), np.diff(c.indptr))
    denom = np.power(diag[rows], 1 - s) * np.power(diag[c.indices], s) + config.shrink
    c.data = c.data / denom
    return NeighbourTable.from_sparse(c, config.width)


@dataclass(eq=False)
class CooccurrenceSource:
    """Neighbours of the viewed and carted items, or else of the person's own history."""

    table: NeighbourTable
    history: PersonHistory
    config: CooccurrenceConfig
    history_half_life_days: float
    # Its proposal at depth k is ``top_k`` of scores that do not depend on k
    # (``candidates.base.shallower``: a deeper proposal gives the shallower one).
    prefix_exact: ClassVar[bool] = True
    name: str = "cooccurrence"
    _reasons: dict[str, ReasonCache] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        reasons = {
            k: ReasonCache(self.name, k)
            for k in (
                "also_viewed",
                "because_you_viewed",
                "because_you_bought",
            )
        }
        object.__setattr__(self, "_reasons", reasons)

    def propose(self, ctx: RecContext, k: int) -> Proposal:
        anchors = np.array(ctx.context_items + ctx.cart_items, dtype=np.int64)
        # Co-occurrence counts views, carts and buys alike: it may say the items were
        # looked at together, never that they were bought together (``complements``).
        p = None
        if len(anchors):
            weights = np.ones(len(anchors))
        else:
            p = self.history.index(ctx.person_id)
            if p is None:
                return Proposal.empty(self.name)
            anchors, weights = self.history.recent_anchors(
                p, ctx.now.timestamp(), self.config.max_anchors, self.history_half_life_days
            )
        known = anchors < self.table.n_items
        got = gather(self.table, anchors[known], weights[known], excluded(ctx.exclude))
        top = top_k(got.scores, k)
        shown = got.anchors[top]
        if p is None:
            reasons = self._reasons["also_viewed"](shown)
        else:  # the person's own items: "because you bought" those they bought
            r = self._reasons
            was_bought = self.history.bought_any(p, shown)
            reasons = personal_reasons(
                r["because_you_viewed"], r["because_you_bought"], shown, was_bought
            )
        return Proposal(self.name, got.items[top], got.scores[top], reasons)
