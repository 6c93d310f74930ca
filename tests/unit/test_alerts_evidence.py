"""The evidence a drop gives the level test, and what other statistics keep of it
(benchmarks/alerts_evidence.py)."""

from __future__ import annotations

import numpy as np
import pytest
from benchmarks.alerts_evidence import efficiency, evidence, told_noise

from shelfwise.monitoring.level import LevelNoise, covariance


def test_evidence_is_the_mean_log_likelihood_ratio_of_the_drop() -> None:
    # Two hours of relative variance 1e-4 each: u'Σ⁻¹u = 2e4, times 0.02² / 2.
    cov = np.diag([1e-4, 1e-4])
    assert evidence(cov, np.ones(2), 0.02) == pytest.approx(4.0)


def test_equal_weights_keep_what_cauchy_schwarz_leaves_them() -> None:
    # Σ = diag(1, 4), u = (1, 1): u'Σ⁻¹u = 1.25. Equal weights: (w'u)² / (w'Σw u'Σ⁻¹u)
    # = 4 / (5 x 1.25) = 0.64; the likelihood ratio's own weights Σ⁻¹u = (1, 0.25): 1.
    cov, u = np.diag([1.0, 4.0]), np.ones(2)
    assert efficiency(np.ones(2), cov, u) == pytest.approx(0.64)
    assert efficiency(np.array([1.0, 0.25]), cov, u) == pytest.approx(1.0)


def test_a_window_on_the_traffic_clock_keeps_less_than_the_level_test_under_ar1() -> None:
    # Twelve hours, a step from hour 6, counting noise falling 4x overnight and the
    # series' own AR(1) (rho 0.9, variance 1e-5): the level test's weights keep all of
    # the evidence, the clicks short since the onset (weights = expected clicks) 95.5% of
    # it, and those less the clicks' level before the onset 74.6% (the busy hours before
    # the step carry most of that difference's noise).
    clicks = np.array([21, 20, 18, 15, 12, 10, 8, 7, 6, 6, 5, 5], dtype=float) * 1000
    noise = LevelNoise(
        white=np.array([2.5e-5]), ar_var=np.array([1e-5]), rho=0.9, offset_var=np.array([1e-6])
    )
    cov = covariance(noise, (1.0 / clicks)[None, :], 0)
    u = (np.arange(12) >= 6).astype(float)
    assert efficiency(np.linalg.solve(cov, u), cov, u) == pytest.approx(1.0)
    assert efficiency(clicks * u, cov, u) == pytest.approx(0.9553, abs=1e-4)
    after, before = clicks * u, clicks * (1.0 - u)
    assert efficiency(after / after.sum() - before / before.sum(), cov, u) == pytest.approx(
        0.7461, abs=1e-4
    )


def test_the_told_noise_is_the_series_own_share_of_the_family() -> None:
    fitted = LevelNoise(white=np.zeros(3), ar_var=np.zeros(3), rho=0.7, offset_var=np.full(3, 2e-6))
    ar1 = told_noise("ar1", fitted)
    # 10% of AR(1) noise of 1% sd is the series' own; 0.5% hourly jitter.
    assert ar1.ar_var == pytest.approx(np.full(3, 1e-5))
    assert ar1.rho == 0.9
    assert ar1.white == pytest.approx(np.full(3, 2.5e-5))
    assert ar1.offset_var is fitted.offset_var
    day = told_noise("day_to_day", fitted)
    assert day.day_var == pytest.approx(np.full(3, 1e-5))
    assert day.ar_var == pytest.approx(np.zeros(3))
    assert day.rho == 0.7
