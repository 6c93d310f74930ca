"""Item-to-item regression neighbours: each item predicted from a person's other items.

The closed form of a linear item-item model with an L2 penalty and a zero
diagonal (EASE, Steck 2019) on the person x item matrix of weighted, decayed
interactions: ``P = (X'X + lambda I)^-1``, ``B_ij = -P_ij / P_jj``. Unlike the
co-occurrence cosine it discounts neighbours explained by other items the person
has. The inverse is dense ``n x n``, so it is fitted only up to ``max_items``
items (beyond that the source stays empty and the blend leans on the others).
Row ``i`` of the kept table lists the items that ``i`` predicts best.
"""

from __future__ import annotations

import numpy as np

from shelfwise.candidates.config import EventWeights, RegressionConfig
from shelfwise.candidates.cooccurrence import interaction_matrix
from shelfwise.candidates.log import InteractionLog
from shelfwise.candidates.neighbours import NeighbourTable


def fit_regression(
    log: InteractionLog, config: RegressionConfig, weights: EventWeights
) -> NeighbourTable:
    n = log.n_items
    empty = NeighbourTable(
        np.full((n, config.width), -1, dtype=np.int32), np.zeros((n, config.width), np.float32)
    )
    if n == 0 or n > config.max_items or log.n_people == 0:
        return empty
    x = interaction_matrix(log, log.person, log.n_people, weights, config.half_life_days)
    gram = (x.T @ x).toarray()
    gram[np.diag_indices(n)] += config.regularization
    p = np.linalg.inv(gram)
    b = p / -np.diag(p)[None, :]
    rows = np.arange(n)
    chunk = max(1, 20_000_000 // n)
    for start in range(0, n, chunk):
        part = rows[start : start + chunk]
        empty.fill_dense(b[part], part)
    return empty
