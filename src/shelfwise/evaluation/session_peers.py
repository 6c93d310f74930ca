"""Session-based peers for next-item prediction, vectorised over batches of predictions.

* :class:`SessionPopularity` — items by the number of training sessions that viewed them.
* :class:`CoViewKNN` — item-kNN (Hidasi et al. 2016's baseline): the items most
  similar to the last viewed one, cosine of their session vectors with a
  shrinkage ``lam`` that damps coincidences of rare items:
  ``|S_i & S_j| / (sqrt(|S_i| |S_j|) + lam)``.
* :class:`SKNN` — session-kNN (Jannach & Ludewig 2017): the current session as
  a set; among the ``sample`` most recent training sessions sharing an item
  with it, the ``k`` most similar by cosine of the binary vectors; an item
  scores the sum of the similarities of the neighbours that contain it.
* :class:`VSKNN` — vector session-kNN (Ludewig & Jannach 2018): as SKNN, but
  the current session is a vector whose weights grow with the position
  (``weighting``: linear ``p/L``, quadratic ``(p/L)^2``, log
  ``1/log10(L-p+1.7)``, same 1), the similarity is the dot product with
  the neighbour's binary vector, and optionally (``idf``) an item's score is
  multiplied by its inverse document frequency ``log(N / n_i)``.

Each peer's ``scores`` gives a dense (batch x items) array; :func:`recommend`
turns it into top-k lists without the item on screen (the last view, never
the target once repeats are collapsed) and without zero-score padding.
"""

from __future__ import annotations

from typing import Literal, Protocol

import numpy as np
import scipy.sparse as sp

from shelfwise.evaluation.sessions import FloatArray, IntArray, Prefixes, Sessions

Weighting = Literal["linear", "quadratic", "log", "same"]
BATCH = 256
CELLS = 1 << 24  # float64 cells of one dense similarity block


class SessionPeer(Protocol):
    name: str

    def fit(self, train: Sessions) -> None: ...

    def scores(self, prefixes: Prefixes, rows: IntArray) -> FloatArray: ...


class SessionPopularity:
    name = "popularity"

    def fit(self, train: Sessions) -> None:
        self.counts = np.asarray(train.matrix().sum(axis=0), dtype=np.float64).ravel()

    def scores(self, prefixes: Prefixes, rows: IntArray) -> FloatArray:
        return np.tile(self.counts, (len(rows), 1))


class CoViewKNN:
    name = "item_knn"

    def __init__(self, lam: float = 20.0) -> None:
        self.lam = lam

    def fit(self, train: Sessions) -> None:
        x = train.matrix()
        co = (x.T @ x).tocsr()
        co.setdiag(0.0)
        co.eliminate_zeros()
        self.root = np.sqrt(np.asarray(x.sum(axis=0), dtype=np.float64).ravel())
        self.co = co

    def scores(self, prefixes: Prefixes, rows: IntArray) -> FloatArray:
        last = prefixes.last[rows]
        got = self.co[last].tocoo()
        denom = self.root[last[got.row]] * self.root[got.col] + self.lam
        out = np.zeros((len(rows), self.co.shape[1]))
        out[got.row, got.col] = got.data / np.maximum(denom, 1e-12)
        return out


class SKNN:
    name = "sknn"

    def __init__(self, k: int = 100, sample: int = 1000) -> None:
        self.k, self.sample = k, sample

    def fit(self, train: Sessions) -> None:
        self.x = train.matrix()
        self.size = np.maximum(np.diff(self.x.indptr), 1).astype(np.float64)
        self.recent = np.argsort(-train.end, kind="stable")  # most recent first
        self.idf = np.zeros(train.n_items)

    def query(self, prefixes: Prefixes, rows: IntArray) -> sp.csr_matrix:
        which, _, items, _ = prefixes.batch(rows)
        q = sp.csr_matrix((np.ones(len(items)), (which, items)), shape=(len(rows), self.x.shape[1]))
        q.sum_duplicates()
        q.data[:] = 1.0
        return q

    def similarity(self, q: sp.csr_matrix) -> FloatArray:
        overlap = (q @ self.x.T).toarray()
        qsize = np.maximum(np.diff(q.indptr), 1).astype(np.float64)
        out: FloatArray = overlap / np.sqrt(qsize[:, None] * self.size[None, :])
        return out

    def scores(self, prefixes: Prefixes, rows: IntArray) -> FloatArray:
        # (rows x training sessions) is dense: as many rows at once as keep it ~128 MB.
        step = max(1, CELLS // max(self.x.shape[0], 1))
        out = np.empty((len(rows), self.x.shape[1]))
        for start in range(0, len(rows), step):
            part = rows[start : start + step]
            sim = self.similarity(self.query(prefixes, part))
            weights = neighbours(sim, self.recent, self.sample, self.k)
            out[start : start + len(part)] = (self.x.T @ weights.T).T
        return out * self.idf if self.idf.any() else out


class VSKNN(SKNN):
    name = "vsknn"

    def __init__(
        self,
        k: int = 100,
        sample: int = 1000,
        weighting: Weighting = "linear",
        idf: bool = False,
    ) -> None:
        super().__init__(k, sample)
        self.weighting, self.use_idf = weighting, idf

    def fit(self, train: Sessions) -> None:
        super().fit(train)
        if self.use_idf:
            n_i = np.asarray(self.x.sum(axis=0), dtype=np.float64).ravel()
            self.idf = np.log(max(len(train), 1) / np.maximum(n_i, 1.0))

    def query(self, prefixes: Prefixes, rows: IntArray) -> sp.csr_matrix:
        which, pos, items, lengths = prefixes.batch(rows)
        w = position_weights(pos, lengths[which], self.weighting)
        # An item viewed twice keeps the weight of its latest position.
        order = np.lexsort((pos, items, which))
        w, items, which = w[order], items[order], which[order]
        last = np.r_[(which[1:] != which[:-1]) | (items[1:] != items[:-1]), True]
        shape = (len(rows), self.x.shape[1])
        return sp.csr_matrix((w[last], (which[last], items[last])), shape=shape)

    def similarity(self, q: sp.csr_matrix) -> FloatArray:
        out: FloatArray = (q @ self.x.T).toarray()
        return out


def position_weights(pos: IntArray, length: IntArray, weighting: Weighting) -> FloatArray:
    """Weight of the view at position ``pos`` (1-based) of a session of ``length`` views."""
    p, n = pos.astype(np.float64), length.astype(np.float64)
    if weighting == "linear":
        return p / n
    if weighting == "quadratic":
        out: FloatArray = (p / n) ** 2
        return out
    if weighting == "log":
        return 1.0 / np.log10(n - p + 1.7)
    return np.ones_like(p)


def neighbours(sim: FloatArray, recent: IntArray, sample: int, k: int) -> FloatArray:
    """Each row's similarities kept only for its ``k`` most similar sessions among the
    ``sample`` most recent that share an item with it (zeros elsewhere)."""
    shares = sim > 0
    if sample < sim.shape[1]:
        by_recency = shares[:, recent]
        within = np.cumsum(by_recency, axis=1) <= sample
        keep = np.zeros_like(shares)
        keep[:, recent] = by_recency & within
        shares = keep
    sim = np.where(shares, sim, 0.0)
    if k < sim.shape[1]:
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        out = np.zeros_like(sim)
        r = np.arange(len(sim))[:, None]
        out[r, top] = sim[r, top]
        return out
    return sim


def recommend(peer: SessionPeer, prefixes: Prefixes, k: int, batch: int = BATCH) -> IntArray:
    """Top-``k`` lists (-1 padded) of ``peer`` for every prediction of ``prefixes``."""
    out = np.full((len(prefixes), k), -1, dtype=np.int64)
    for start in range(0, len(prefixes), batch):
        rows = np.arange(start, min(start + batch, len(prefixes)))
        scores = peer.scores(prefixes, rows)
        scores[np.arange(len(rows)), prefixes.last[rows]] = 0.0
        out[rows] = top_lists(scores, k)
    return out


def top_lists(scores: FloatArray, k: int) -> IntArray:
    """Each row's ``k`` best columns with a positive score, best first (ties: lower id)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    r = np.arange(len(scores))[:, None]
    vals = scores[r, part]
    order = np.lexsort((part, -vals), axis=1)
    top = part[r, order]
    return np.where(scores[r, top] > 0, top, -1).astype(np.int64)


__all__ = [
    "SKNN",
    "VSKNN",
    "CoViewKNN",
    "SessionPeer",
    "SessionPopularity",
    "neighbours",
    "position_weights",
    "recommend",
    "top_lists",
]
