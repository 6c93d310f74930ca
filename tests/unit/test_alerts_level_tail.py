"""The level test's null tail against draws from its own fitted noise
(benchmarks/alerts_level_tail.py)."""

from __future__ import annotations

import numpy as np
import pytest
from benchmarks.alerts_level_tail import ONSETS, ar_path, drawn, gaussian_llr_scale, step_z
from scipy import special

from shelfwise.monitoring.level import LevelNoise, covariance


def test_a_right_gaussian_ratio_has_a_tail_scale_above_1_where_its_evidence_is_large() -> None:
    # a z - a²/2 with a² / 2 = 10: at 6, x = 6/a + a/2 = 3.578, the normal hazard there is
    # 3.825, the scale a / 3.825 = 1.169; with evidence 2 (a = 2, x = 4) it is 0.473.
    assert gaussian_llr_scale(10.0, 6.0) == pytest.approx(1.169, abs=1e-3)
    assert gaussian_llr_scale(2.0, 6.0) == pytest.approx(0.473, abs=1e-3)
    # The same as the numerical slope of -log P(LLR > h), and falling further out.
    a = np.sqrt(20.0)

    def log_tail(h: float) -> float:
        return float(special.log_ndtr(-(h / a + a / 2.0)))

    slope = (log_tail(6.0 - 1e-4) - log_tail(6.0 + 1e-4)) / 2e-4
    assert gaussian_llr_scale(10.0, 6.0) == pytest.approx(1.0 / slope, rel=1e-5)
    assert gaussian_llr_scale(10.0, 11.0) < gaussian_llr_scale(10.0, 6.0)


def _noise() -> LevelNoise:
    return LevelNoise(
        white=np.array([2e-5]),
        ar_var=np.array([1e-5]),
        rho=0.9,
        offset_var=np.array([4e-6]),
        day_var=np.array([3e-6]),
    )


def test_drawn_residuals_have_the_fitted_covariance() -> None:
    # Six hours across a day's end, 100,000 draws: the empirical covariance is the
    # written-out Σ within 2% of its largest entry.
    rng = np.random.default_rng(5)
    draws, n, burn = 100_000, 6, 60
    noise = _noise()
    count_var = np.array([[5e-5, 6e-5, 8e-5, 1e-4, 1.2e-4, 1.5e-4]])
    day = np.array([0, 0, 0, 1, 1, 1])
    path = ar_path(noise.rho, rng.standard_normal((draws, 1, burn + n)))[:, :, burn:]
    r = drawn(
        noise,
        count_var,
        rng.standard_normal((draws, 1, n)),
        path,
        rng.standard_normal((draws, 1, 2))[:, :, day],
        rng.standard_normal((draws, 1)),
    )[:, 0, :]
    want = covariance(noise, count_var, 0, day)
    assert np.cov(r.T) == pytest.approx(want, abs=0.02 * want.max())
    # The day shift: lag-1 pairs within a day share d = 3e-6 more than the pair across
    # the day's end (the AR(1) part is the same at lag 1).
    emp = np.cov(r.T)
    assert emp[0, 1] - emp[2, 3] == pytest.approx(3e-6, abs=1.5e-6)


def test_step_z_is_standard_normal_under_the_fitted_noise_and_is_the_dense_gls_step() -> None:
    rng = np.random.default_rng(8)
    n, series = 48, 400
    noise = LevelNoise(
        white=np.full(series, 2e-5),
        ar_var=np.full(series, 1e-5),
        rho=0.9,
        offset_var=np.full(series, 4e-6),
        day_var=np.full(series, 3e-6),
    )
    count_var = np.tile(1.0 / np.linspace(5000, 20000, n), (series, 1))
    day = np.arange(n) // 24
    cov = covariance(noise, count_var, 0, day)
    r = rng.multivariate_normal(np.zeros(n), cov, size=series)
    z = step_z(noise, count_var, r, day)
    assert z.shape == (series, len(ONSETS))
    u = (np.arange(n) >= n - 6).astype(float)
    w = np.linalg.solve(cov, u)
    assert z[0, ONSETS.index(6)] == pytest.approx(-(w @ r[0]) / np.sqrt(w @ u), rel=1e-8)
    # 400 series x 5 onsets: the sd within 0.1 of 1; at twice the noise it would be 1.41.
    assert z.std() == pytest.approx(1.0, abs=0.1)
    assert step_z(noise, count_var, r * np.sqrt(2.0), day).std() > 1.25
