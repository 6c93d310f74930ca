"""The blend tuner scores every person at once (``evaluation.tune.Stacked``): the same
NDCG@k as scoring each person's block on its own (``Cached.ndcg``)."""

from __future__ import annotations

import numpy as np
import pytest

from shelfwise.candidates.base import Proposal, Reason
from shelfwise.evaluation.split import Target
from shelfwise.evaluation.tune import Cached, Stacked, coordinate_ascent


def proposal(items: np.ndarray, scores: np.ndarray) -> Proposal:
    return Proposal("s", items.astype(np.int64), scores, (Reason("s", "for_you"),) * len(items))


def person(rng: np.random.Generator, n: int) -> Cached:
    proposals = [proposal(rng.choice(500, size=n, replace=False), rng.random(n)) for _ in range(3)]
    bought = np.unique(rng.choice(500, size=int(rng.integers(1, 30)), replace=False))
    target = Target(0, bought.astype(np.int64), np.ones(len(bought)), np.zeros(0, np.int64))
    return Cached.of(proposals, target)


def test_stacked_equals_one_person_at_a_time() -> None:
    rng = np.random.default_rng(0)
    # blocks of different widths, some shorter than k, one empty of hits
    cached = [person(rng, n) for n in (3, 8, 40, 120, 200, 15)]
    for k in (5, 10):
        stacked = Stacked.of(cached, k)
        for weights in (np.array([1.0, 0.0, 0.0]), np.array([0.2, 1.5, 0.5]), rng.random(3)):
            want = sum(c.ndcg(weights, k) for c in cached) / len(cached)
            assert stacked.mean_ndcg(weights) == pytest.approx(want, abs=1e-12)


def test_a_hit_written_out() -> None:
    # one person, candidates [10, 20, 30], the second source ranks 30 first; 30 was bought
    a = proposal(np.array([10, 20, 30]), np.array([1.0, 0.5, 0.1]))
    b = proposal(np.array([30]), np.array([1.0]))
    target = Target(0, np.array([30]), np.ones(1), np.zeros(0, np.int64))
    stacked = Stacked.of([Cached.of([a, b], target)], k=2)
    assert stacked.mean_ndcg(np.array([1.0, 0.0])) == 0.0  # 30 is third
    assert stacked.mean_ndcg(np.array([0.0, 1.0])) == pytest.approx(1.0)
    assert stacked.mean_ndcg(np.array([1.0, 1.0])) == pytest.approx(1.0)  # 1.1 > 1.0
    weights, score = coordinate_ascent([Cached.of([a, b], target)], np.array([1.0, 0.0]), 2)
    assert score == pytest.approx(1.0) and weights[1] > 0


def test_the_top_k_of_the_contenders_is_the_whole_sort_bit_for_bit() -> None:
    """Scoring only the candidates that can reach the top k (ties at the k-th score kept,
    padding left out) gives exactly the figure of a stable sort of every candidate."""
    rng = np.random.default_rng(7)
    for trial in range(200):
        people, width, k = (
            int(rng.integers(1, 40)),
            int(rng.integers(1, 60)),
            int(rng.integers(1, 20)),
        )
        tied = trial % 2 == 1  # few distinct scores: many ties at the k-th
        shape = (people, width, 4)
        scores = rng.choice([0.0, 0.5, 1.0], size=shape) if tied else rng.random(shape)
        valid = np.arange(width)[None, :] < rng.integers(0, width + 1, size=people)[:, None]
        scores[~valid] = 0.0
        hit = valid & (rng.random((people, width)) < 0.2)
        stacked = Stacked(scores, valid, hit, 1.0 + rng.random(people), k)
        for _ in range(3):
            weights = rng.choice([0.0, 0.5, 1.0, 2.0], size=4)
            scored = np.where(valid, scores @ weights, -np.inf)
            top = np.argsort(-scored, axis=1, kind="stable")[:, :k]
            gained = np.take_along_axis(hit, top, axis=1) @ (
                1.0 / np.log2(np.arange(2, top.shape[1] + 2))
            )
            want = float((gained / stacked.ideal).sum()) / people
            assert stacked.mean_ndcg(weights) == want
