"""A level threshold per store from draws of its fitted noise
(benchmarks/alerts_level_bootstrap.py)."""

from __future__ import annotations

import numpy as np
import pytest
from benchmarks.alerts_level_bootstrap import GRID, bootstrap_threshold, poisson_upper, seeds


def test_seed_ranges() -> None:
    assert seeds("1000-1002,0-1,7005") == [1000, 1001, 1002, 0, 1, 7005]
    assert seeds("") == []


def test_the_threshold_is_the_lowest_on_the_grid_within_the_budget() -> None:
    # 10 store-months of 32 series are 1.6 units of 200 series-months: within a budget of
    # 1 a month per 200 series at most one drawn episode may pass (1 / 1.6 = 0.625).
    peaks = np.array([8.1, 8.6, 9.1, 9.6, 10.1])
    assert bootstrap_threshold(peaks, 10, 1.0, 1.0) == 9.75
    # Twice the allowance: none may pass (2 / 1.6 > 1), so above the highest peak.
    assert bootstrap_threshold(peaks, 10, 2.0, 1.0) == 10.25
    # Ten times the draws: 16 units, so 16 episodes could pass; all five do at the grid's start.
    assert bootstrap_threshold(peaks, 100, 1.0, 1.0) == GRID[0]
    # A peak past the grid's end that the budget cannot hold: no threshold on the grid.
    assert bootstrap_threshold(np.append(peaks, 13.0), 10, 2.0, 1.0) == float("inf")


def test_poisson_upper_bound() -> None:
    # The classic one-sided 95% bounds: 3.00 for no event, 4.74 for one.
    assert poisson_upper(0) == pytest.approx(2.996, abs=1e-3)
    assert poisson_upper(1) == pytest.approx(4.744, abs=1e-3)
