"""Peer baselines fitted on the same training log: the bar shelfwise must clear.

Every model sees the person x item matrix of the training window (binary:
any interaction counts) and answers ``recommend(person, k, exclude)``; a model
may also answer ``recommend_many(people, k, excludes)`` (the same lists, batched).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from shelfwise.candidates.log import PURCHASE, InteractionLog
from shelfwise.candidates.neighbours import NeighbourTable, top_k
from shelfwise.candidates.regression import gram_inverse

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
DAY = 86400.0


class Recommender(Protocol):
    name: str

    def fit(self, train: InteractionLog) -> None: ...

    def recommend(self, person: int, k: int, exclude: IntArray) -> IntArray: ...


def binary_matrix(train: InteractionLog) -> sp.csr_matrix:
    x = sp.csr_matrix(
        (np.ones(len(train)), (train.person, train.item)), shape=(train.n_people, train.n_items)
    )
    x.sum_duplicates()
    x.data[:] = 1.0
    return x


def _top(scores: FloatArray, k: int, exclude: IntArray) -> IntArray:
    scores = scores.astype(np.float64, copy=True)
    scores[exclude] = -np.inf
    top = top_k(scores, k)
    return top[np.isfinite(scores[top])].astype(np.int64)


class GlobalPopularity:
    name = "popularity"

    def fit(self, train: InteractionLog) -> None:
        self.scores = np.asarray(binary_matrix(train).sum(axis=0)).ravel()

    def recommend(self, person: int, k: int, exclude: IntArray) -> IntArray:
        return _top(self.scores, k, exclude)


class RecentPopularity(GlobalPopularity):
    """Distinct buyers in the last ``days`` before the cutoff."""

    name = "recent_popularity"

    def __init__(self, days: float = 30.0) -> None:
        self.days = days

    def fit(self, train: InteractionLog) -> None:
        recent = train.select(train.at >= train.end - self.days * DAY)
        self.scores = np.asarray(binary_matrix(recent).sum(axis=0)).ravel()


class PastThenPopular:
    """The person's own purchases, most often bought first, then global popularity."""

    name = "past_then_popular"

    def fit(self, train: InteractionLog) -> None:
        buys = train.select(train.kind == PURCHASE) if (train.kind == PURCHASE).any() else train
        self.past = sp.csr_matrix(
            (np.ones(len(buys)) + buys.at / (buys.end * 1e3), (buys.person, buys.item)),
            shape=(train.n_people, train.n_items),
        )
        self.past.sum_duplicates()
        self.popular = np.asarray(binary_matrix(train).sum(axis=0)).ravel()
        self.popular = self.popular / (self.popular.max() or 1.0)

    def recommend(self, person: int, k: int, exclude: IntArray) -> IntArray:
        scores = self.popular.copy()
        row = self.past[person]
        scores[row.indices] += 1.0 + row.data
        return _top(scores, k, exclude)


class ItemKNN:
    """Item-based kNN: cosine of item columns, ``neighbours`` per item, summed over history."""

    name = "item_knn"

    def __init__(self, neighbours: int = 100) -> None:
        self.neighbours = neighbours

    def fit(self, train: InteractionLog) -> None:
        self.x = binary_matrix(train)
        norms = np.sqrt(np.maximum(np.asarray(self.x.sum(axis=0)).ravel(), 1))
        xn = self.x @ sp.diags(1 / norms)
        table = NeighbourTable.from_sparse(xn.T @ xn, self.neighbours)
        n, width = table.items.shape
        keep = table.items.ravel() >= 0
        rows = np.repeat(np.arange(n), width)[keep]
        self.sim = sp.csr_matrix(
            (table.scores.ravel()[keep], (rows, table.items.ravel()[keep])), shape=(n, n)
        )

    def recommend(self, person: int, k: int, exclude: IntArray) -> IntArray:
        scores = (self.x[person] @ self.sim).toarray().ravel()
        return _top(scores, k, exclude)


class ImplicitALS:
    name = "implicit_als"

    def __init__(
        self,
        factors: int = 64,
        iterations: int = 15,
        alpha: float = 10.0,
        regularization: float = 0.01,
    ) -> None:
        self.factors, self.iterations, self.alpha = factors, iterations, alpha
        self.regularization = regularization

    def fit(self, train: InteractionLog) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        x = binary_matrix(train).astype(np.float32)
        x.data *= self.alpha
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors,
                iterations=self.iterations,
                regularization=self.regularization,
                random_state=7,
                num_threads=1,  # reproducible, and no spinning threads on a shared machine
            )
            model.fit(x, show_progress=False)
        self.users = np.asarray(model.user_factors)
        self.items = np.asarray(model.item_factors)

    def recommend(self, person: int, k: int, exclude: IntArray) -> IntArray:
        return _top(self.items @ self.users[person], k, exclude)


BATCH = 256  # people scored by one matrix product


class EASE:
    """Embarrassingly shallow autoencoder: B = I - P / diag(P), P = (X'X + lambda I)^-1."""

    name = "ease"

    def __init__(self, regularization: float = 500.0) -> None:
        self.regularization = regularization

    def fit(self, train: InteractionLog) -> None:
        self.x = binary_matrix(train)
        gram = (self.x.T @ self.x).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.regularization
        p = gram_inverse(gram)
        self.b = (p / -np.diag(p)).astype(np.float32)
        np.fill_diagonal(self.b, 0.0)

    def recommend(self, person: int, k: int, exclude: IntArray) -> IntArray:
        return self.recommend_many([person], k, [exclude])[0]

    def recommend_many(
        self, people: Sequence[int], k: int, excludes: Sequence[IntArray]
    ) -> list[IntArray]:
        """Every person's list from one matrix product per ``BATCH`` people (the sum of the
        rows of B over their history, accumulated in float64)."""
        out: list[IntArray] = []
        for at in range(0, len(people), BATCH):
            rows = np.asarray(people[at : at + BATCH], dtype=np.int64)
            scores = np.asarray(self.x[rows] @ self.b, dtype=np.float64)
            out += [_top(s, k, e) for s, e in zip(scores, excludes[at : at + BATCH], strict=True)]
        return out


def baselines() -> list[Recommender]:
    return [
        GlobalPopularity(),
        RecentPopularity(),
        ItemKNN(),
        ImplicitALS(),
        EASE(),
        PastThenPopular(),
    ]
