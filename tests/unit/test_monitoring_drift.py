"""Drift statistics with hand-computed values, and exposure concentration."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shelfwise.monitoring.drift import (
    CategoricalBins,
    NumericBins,
    compare,
    gini,
    jensen_shannon,
    learned_threshold,
    psi,
    sampling_psi,
    top_share,
)


def test_psi_and_js_by_hand() -> None:
    ref, cur = np.array([50.0, 50.0]), np.array([25.0, 75.0])
    # (0.25 - 0.5) ln(0.5) + (0.75 - 0.5) ln(1.5), up to the tiny smoothing.
    assert psi(ref, cur) == pytest.approx(0.25 * math.log(2) + 0.25 * math.log(1.5), rel=1e-3)
    assert psi(ref, ref) == 0.0
    assert jensen_shannon(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1, rel=1e-2)


def test_bins_are_frozen_from_the_reference() -> None:
    bins = NumericBins.from_reference(np.arange(100, dtype=float), n_bins=4)
    assert bins.edges.tolist() == [24.75, 49.5, 74.25]
    assert bins.counts(np.array([-5.0, 30.0, 1000.0, np.nan])).tolist() == [1, 1, 0, 1]
    cats = CategoricalBins.from_reference(["a", "b", "b", "c"], max_levels=2)
    assert cats.levels == ("a", "b")
    assert cats.counts(["b", "z", "a", "b"]).tolist() == [1, 2, 1]


def test_threshold_comes_from_the_reference_variability() -> None:
    rng = np.random.default_rng(0)
    calm = [np.bincount(rng.integers(0, 5, 2000), minlength=5).astype(float) for _ in range(7)]
    # Days that differ only by sampling: the threshold is this comparison's sampling noise.
    noise = sampling_psi(5, 14_000, 2000)
    assert noise <= learned_threshold(calm, 14_000, 2000) <= 3 * noise
    # Days that move more than their sample sizes explain raise the threshold.
    moving = [np.array([400.0 + 150 * (d % 2), 400, 400, 400, 400]) for d in range(7)]
    assert learned_threshold(moving, 14_000, 2000) > learned_threshold(calm, 14_000, 2000)
    ref = np.sum(calm, axis=0)
    same = np.bincount(rng.integers(0, 5, 2000), minlength=5).astype(float)
    moved = np.array([100.0, 100.0, 100.0, 100.0, 1600.0])
    labels = tuple("abcde")
    assert not compare("x", labels, ref, same, calm).drifted
    assert compare("x", labels, ref, moved, calm).drifted
    assert not compare("x", labels, ref, moved[:1] / 100, calm).enough_data


def test_concentration() -> None:
    assert gini(np.array([5.0, 5.0, 5.0, 5.0])) == pytest.approx(0.0)
    assert gini(np.array([0.0, 0.0, 0.0, 10.0])) == pytest.approx(0.75)
    assert gini(np.zeros(3)) == 0.0
    assert gini(np.array([1.0, 3.0])) == pytest.approx(0.25)
    assert top_share(np.array([70.0, 10.0, 10.0, 10.0]), catalog_size=200) == pytest.approx(0.8)


@given(
    st.lists(st.floats(0, 1e6), min_size=2, max_size=30),
    st.lists(st.floats(0, 1e6), min_size=2, max_size=30),
)
def test_psi_and_js_are_non_negative_and_bounded(a: list[float], b: list[float]) -> None:
    n = min(len(a), len(b))
    ra, rb = np.array(a[:n]), np.array(b[:n])
    assert psi(ra, rb) >= -1e-12
    assert -1e-12 <= jensen_shannon(ra, rb) <= 1 + 1e-9
