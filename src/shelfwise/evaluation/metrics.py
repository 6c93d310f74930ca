"""Ranking and beyond-accuracy metrics at K, per person, then averaged.

Recall divides by the number of targets; NDCG's ideal ranks ``min(|T|, K)``
hits first; MAP divides by ``min(|T|, K)``; MRR is 1 / rank of the first hit
(0 without one). Revenue-weighted recall is the value of the hit targets over
the value of all targets. Coverage is the share of the training catalog that
appears in anybody's list; novelty the mean self-information
``-log2(share of people who had the item)``; intra-list diversity the mean
pairwise ``1 - cosine`` of the recommended items' person vectors.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from shelfwise.candidates.log import InteractionLog
from shelfwise.evaluation.split import Target

ACCURACY = ("recall", "ndcg", "map", "mrr", "hit_rate", "revenue_recall")
BEYOND = ("coverage", "novelty", "diversity")
METRICS = ACCURACY + BEYOND


def accuracy(rec: npt.NDArray[np.int64], target: Target, k: int) -> dict[str, float]:
    rec = rec[:k]
    pos = np.searchsorted(target.items, rec)
    hit = target.items[np.minimum(pos, len(target.items) - 1)] == rec
    ranks = np.flatnonzero(hit)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    n_ideal = min(len(target.items), k)
    precision_at_hits = np.arange(1, len(ranks) + 1) / (ranks + 1)
    hit_value = target.value[pos[hit]].sum()
    total_value = target.value.sum()
    return {
        "recall": len(ranks) / len(target.items),
        "ndcg": float(discounts[ranks].sum() / discounts[:n_ideal].sum()),
        "map": float(precision_at_hits.sum() / n_ideal),
        "mrr": float(1.0 / (ranks[0] + 1)) if len(ranks) else 0.0,
        "hit_rate": float(len(ranks) > 0),
        "revenue_recall": float(hit_value / total_value) if total_value > 0 else 0.0,
    }


class BeyondAccuracy:
    """Item statistics from the training log, shared by every model's lists."""

    def __init__(self, train: InteractionLog) -> None:
        x = sp.csr_matrix(
            (np.ones(len(train)), (train.person, train.item)),
            shape=(train.n_people, train.n_items),
        )
        x.data[:] = 1.0
        x.sum_duplicates()
        x.data[:] = 1.0
        counts = np.asarray(x.sum(axis=0)).ravel()
        self.catalog = max(int((counts > 0).sum()), 1)
        share = np.maximum(counts, 1) / max(train.n_people, 1)
        self.information = -np.log2(share)
        norms = np.sqrt(np.maximum(counts, 1))
        self.vectors = sp.csr_matrix(sp.diags(1 / norms) @ x.T)  # unit rows per item
        self.sq_norms = np.asarray(self.vectors.multiply(self.vectors).sum(axis=1)).ravel()

    def novelty(self, rec: npt.NDArray[np.int64]) -> float:
        return float(self.information[rec].mean()) if len(rec) else 0.0

    def diversity(self, rec: npt.NDArray[np.int64]) -> float:
        n = len(rec)
        if n < 2:
            return 0.0
        v = self.vectors[rec]
        sim = (v @ v.T).toarray()
        off = (sim.sum() - np.trace(sim)) / (n * (n - 1))
        return float(1.0 - off)

    def diversities(self, lists: list[npt.NDArray[np.int64]]) -> npt.NDArray[np.float64]:
        """:meth:`diversity` of every list at once: the pairwise similarities of a list sum
        to the squared norm of its vectors' sum less their own squared norms."""
        sizes = np.fromiter((len(r) for r in lists), dtype=np.int64, count=len(lists))
        if not len(lists) or not sizes.sum():
            return np.zeros(len(lists))
        rows = np.repeat(np.arange(len(lists)), sizes)
        member = sp.csr_matrix(
            (np.ones(len(rows)), (rows, np.concatenate(lists))),
            shape=(len(lists), self.vectors.shape[0]),
        )
        summed = sp.csr_matrix(member @ self.vectors)
        total = np.asarray(summed.multiply(summed).sum(axis=1)).ravel()
        own = np.asarray(member @ self.sq_norms).ravel()
        pairs = np.maximum(sizes * (sizes - 1), 1)
        return np.where(sizes >= 2, 1.0 - (total - own) / pairs, 0.0)

    def coverage(self, lists: list[npt.NDArray[np.int64]]) -> float:
        if not lists:
            return 0.0
        return len(np.unique(np.concatenate(lists))) / self.catalog


def per_person(
    lists: list[npt.NDArray[np.int64]], targets: list[Target], k: int
) -> dict[str, npt.NDArray[np.float64]]:
    """Every accuracy metric of every evaluated person, in ``targets`` order."""
    rows = [accuracy(rec, target, k) for rec, target in zip(lists, targets, strict=True)]
    return {name: np.array([r[name] for r in rows], dtype=np.float64) for name in ACCURACY}


def summarise(
    lists: list[npt.NDArray[np.int64]],
    targets: list[Target],
    k: int,
    beyond: BeyondAccuracy,
    people: dict[str, npt.NDArray[np.float64]] | None = None,
) -> dict[str, float]:
    """Mean of every metric over the evaluated people (``people``: their ``per_person``)."""
    people = people if people is not None else per_person(lists, targets, k)
    n = max(len(targets), 1)
    out = {name: float(values.sum()) / n for name, values in people.items()}
    novelty = 0.0
    for rec in lists:
        novelty += beyond.novelty(rec[:k])
    heads = [r[:k] for r in lists]
    out["coverage"] = beyond.coverage(heads)
    out["novelty"] = novelty / n
    out["diversity"] = float(beyond.diversities(heads).sum()) / n
    return out
