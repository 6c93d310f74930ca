"""The alerts benchmark's interval for a median delay and its move of the other tests'
thresholds (benchmarks/alerts.py)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from benchmarks.alerts import median_interval, shifted
from hypothesis import given
from hypothesis import strategies as st

from shelfwise.monitoring.detector import DetectorConfig


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


def test_moving_the_other_tests_thresholds_keeps_their_tail_where_it_was() -> None:
    cfg = DetectorConfig(fdr=0.0005, sequential_threshold=9.0, others_tail_base=-5.0)
    moved = shifted(cfg, 3.0)
    assert moved.fdr == pytest.approx(0.0005 * math.exp(-3.0))
    assert moved.sequential_threshold == 12.0
    assert moved.others_tail_base == -8.0  # 5 log units below the thresholds before the move
    assert moved.level_threshold == cfg.level_threshold
    assert shifted(replace(cfg, sequential_threshold=0.0), 3.0).sequential_threshold == 0.0
    assert shifted(moved, -3.0).fdr == pytest.approx(cfg.fdr)
