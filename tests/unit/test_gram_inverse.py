"""``candidates.regression.gram_inverse``: the inverse of a regularised Gram matrix."""

from __future__ import annotations

import numpy as np
import pytest

from shelfwise.candidates.regression import gram_inverse


def test_the_inverse_of_a_small_gram_written_out() -> None:
    # [[4, 2, 1], [2, 3, 0], [1, 0, 2]], det 13: its adjugate over 13
    gram = np.array([[4.0, 2.0, 1.0], [2.0, 3.0, 0.0], [1.0, 0.0, 2.0]])
    want = np.array([[6.0, -4.0, -3.0], [-4.0, 7.0, 2.0], [-3.0, 2.0, 8.0]]) / 13
    assert gram_inverse(gram.copy()) == pytest.approx(want)


def test_it_matches_the_general_inverse_on_a_random_gram() -> None:
    rng = np.random.default_rng(0)
    x = (rng.random((400, 120)) < 0.05).astype(np.float64)
    gram = x.T @ x + 10.0 * np.eye(120)
    got = gram_inverse(gram.copy())
    np.testing.assert_allclose(got, np.linalg.inv(gram), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(got, got.T)


def test_a_gram_that_is_not_positive_definite_falls_back_to_the_general_inverse() -> None:
    gram = np.array([[1.0, 2.0], [2.0, 1.0]])  # eigenvalues 3 and -1
    assert gram_inverse(gram.copy()) == pytest.approx(np.linalg.inv(gram))
