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
import numpy.typing as npt
from scipy.linalg import lapack

from shelfwise.candidates.config import EventWeights, RegressionConfig
from shelfwise.candidates.cooccurrence import interaction_matrix
from shelfwise.candidates.log import InteractionLog
from shelfwise.candidates.neighbours import NeighbourTable, block_rows


def gram_inverse(gram: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``(X'X + lambda I)^-1`` of a regularised Gram matrix (symmetric positive definite): a
    Cholesky factor and its inverse (LAPACK ``potrf`` / ``potri``), about 2/3 of the work
    of a general inverse, the same matrix up to rounding."""
    # symmetric: a C-ordered matrix is its own transpose in Fortran order (no copy)
    gram = np.asfortranarray(gram.T if gram.flags.c_contiguous else gram, dtype=np.float64)
    factor, info = lapack.dpotrf(gram, lower=False, clean=False)
    if info == 0:
        inverse, info = lapack.dpotri(factor, lower=False, overwrite_c=True)
    if info != 0:  # not positive definite (a zero regularisation): the general inverse
        return np.asarray(np.linalg.inv(gram), dtype=np.float64)
    return _mirrored(inverse).T  # symmetric: its transpose is the same matrix, C-ordered


def _mirrored(upper: npt.NDArray[np.float64], block: int = 256) -> npt.NDArray[np.float64]:
    """``upper`` with its strict lower triangle overwritten by the upper one's mirror, in
    place, a band of rows at a time (no ``n x n`` temporaries, as ``np.triu`` makes)."""
    n = upper.shape[0]
    for start in range(0, n, block):
        stop = min(start + block, n)
        upper[start:stop, :start] = upper[:start, start:stop].T
        square = upper[start:stop, start:stop]
        below = np.tril_indices(stop - start, -1)
        square[below] = square.T[below]
    return upper


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
    p = gram_inverse(gram)
    b = p / -np.diag(p)[None, :]
    rows = np.arange(n)
    chunk = block_rows(n)
    for start in range(0, n, chunk):
        part = rows[start : start + chunk]
        empty.fill_dense(b[part], part)
    return empty
