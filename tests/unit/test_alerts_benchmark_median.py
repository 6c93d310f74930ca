"""The alerts benchmark's interval for a median delay (benchmarks/alerts.py)."""

from __future__ import annotations

import numpy as np
from benchmarks.alerts import median_interval
from hypothesis import given
from hypothesis import strategies as st


def test_twenty_delays_give_the_sixth_and_fifteenth() -> None:
    # P(Binomial(20, 1/2) <= 5) = 0.021 <= 0.025 < P(<= 6) = 0.058.
    assert median_interval(list(range(1, 21))) == (6.0, 15.0)


def test_five_delays_are_too_few_for_95_percent() -> None:
    # Even min and max miss the median with probability 2 / 32 = 6%.
    assert median_interval([3, 4, 5, 9, 20]) is None
    assert median_interval([3, 4, 5, 9, 20, 40]) == (3.0, 40.0)


@given(st.lists(st.integers(1, 72), min_size=6, max_size=120))
def test_the_interval_holds_the_sample_median_within_the_sample(values: list[int]) -> None:
    ci = median_interval(values)
    assert ci is not None
    lo, hi = ci
    assert min(values) <= lo <= float(np.median(values)) <= hi <= max(values)
