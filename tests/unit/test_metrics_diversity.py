"""Intra-list diversity of every list at once (``BeyondAccuracy.diversities``)."""

from __future__ import annotations

import numpy as np
import pytest

from shelfwise.candidates.log import InteractionLog
from shelfwise.evaluation.metrics import BeyondAccuracy


def beyond(people: list[str], products: list[str]) -> BeyondAccuracy:
    n = len(people)
    log = InteractionLog.from_columns(
        people=people,
        products=products,
        kinds=["purchase"] * n,
        at=np.arange(n, dtype=np.float64),
        baskets=[f"b{i}" for i in range(n)],
        quantity=np.ones(n),
        price=np.ones(n),
    )
    return BeyondAccuracy(log)


def test_diversity_written_out() -> None:
    # a: bought by p1, p2; b: by p1; c: by p3. cos(a, b) = 1/sqrt(2), cos(a, c) = cos(b, c) = 0
    b = beyond(["p1", "p2", "p1", "p3"], ["a", "a", "b", "c"])
    a_, b_, c_ = 0, 1, 2  # dense indices in order of first appearance
    lists = [np.array([a_, b_]), np.array([a_, b_, c_]), np.array([c_]), np.zeros(0, np.int64)]
    got = b.diversities(lists)
    assert got == pytest.approx([1 - 1 / np.sqrt(2), 1 - 2 / np.sqrt(2) / 6, 0.0, 0.0])


def test_diversities_equal_diversity_one_list_at_a_time() -> None:
    rng = np.random.default_rng(0)
    people = [f"p{i}" for i in rng.integers(0, 60, 600)]
    products = [f"i{i}" for i in rng.integers(0, 80, 600)]
    b = beyond(people, products)
    n_items = b.vectors.shape[0]
    lists = [rng.choice(n_items, size=int(s), replace=False) for s in rng.integers(0, 11, 50)]
    want = [b.diversity(r) for r in lists]
    assert b.diversities(lists) == pytest.approx(want, abs=1e-12)
