"""A training set thinned to a sample of its negatives keeps every positive and weighted row."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from shelfwise.ranking.dataset import TrainingSet


def training_set(sizes: list[int], positives: list[int], seed: int) -> TrainingSet:
    rng = np.random.default_rng(seed)
    n = sum(sizes)
    y = np.zeros(n, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    for start, size, bought in zip(starts, sizes, positives, strict=True):
        y[start : start + min(bought, size)] = 1
    weights = np.where(rng.random(n) < 0.1, 2.5, 1.0)
    return TrainingSet(
        np.arange(n, dtype=np.float64)[:, None] * np.ones((1, 3)),
        y,
        np.asarray(sizes, dtype=np.int64),
        [f"p{g}" for g in range(len(sizes))],
        np.arange(n, dtype=np.int64),
        [],
        weights,
    )


@settings(max_examples=80, deadline=None)
@given(
    groups=st.lists(st.tuples(st.integers(1, 40), st.integers(0, 3)), min_size=1, max_size=20),
    share=st.sampled_from([0.1, 0.5, 0.9]),
    seed=st.integers(0, 1000),
)
def test_every_positive_and_weighted_row_stays_in_its_request(
    groups: list[tuple[int, int]], share: float, seed: int
) -> None:
    full = training_set([s for s, _ in groups], [b for _, b in groups], seed)
    thin = full.thinned(share, seed)
    kept = thin.items  # the row numbers of the full set, in order
    assert np.all(np.diff(kept) > 0)
    assert int(thin.groups.sum()) == len(thin.y) == len(thin.x) == len(kept)
    must = np.flatnonzero((full.y > 0) | (full.row_weights() != 1.0))
    assert set(must.tolist()) <= set(kept.tolist())
    assert np.array_equal(thin.y, full.y[kept]) and np.array_equal(thin.x, full.x[kept])
    assert thin.weights is not None and np.array_equal(thin.weights, full.weights[kept])  # type: ignore[index]
    # each kept row stays with its own request, in order; requests left empty are dropped
    request = np.repeat(np.arange(len(full.groups)), full.groups)
    left = np.bincount(request[kept], minlength=len(full.groups))
    assert thin.groups.tolist() == left[left > 0].tolist()
    assert thin.persons == [full.persons[g] for g in np.flatnonzero(left)]


def test_about_the_share_of_negatives_is_kept_and_the_draw_is_fixed() -> None:
    full = training_set([200] * 50, [2] * 50, seed=1)
    thin = full.thinned(0.5)
    negatives = (full.y == 0) & (full.row_weights() == 1.0)
    kept_negatives = int(((thin.y == 0) & (thin.row_weights() == 1.0)).sum())
    assert abs(kept_negatives / negatives.sum() - 0.5) < 0.03  # 9,000 draws: sd 0.005
    assert np.array_equal(full.thinned(0.5).items, thin.items)
    assert full.thinned(1.0) is full
