"""The money at risk an alert states: the level test's fit of the loss (its algebra
against a dense solve, its bias and spread under the exact noise model, a simulated
drop), and which estimate ``money_at_risk`` states."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from shelfwise.monitoring import synthetic
from shelfwise.monitoring.detector import DetectorConfig, LevelTest, evaluate, fit_baseline, onset
from shelfwise.monitoring.level import RHOS, LevelNoise, covariance, level_statistic
from shelfwise.monitoring.money import money_at_risk, onset_variance

REFERENCE = 28 * 24
TARGET = ("home_top_picks", "bedding")


def _noise(s: int, rho: float, ar_var: float, white: float, offset: float) -> LevelNoise:
    return LevelNoise(
        white=np.full(s, white),
        ar_var=np.full(s, ar_var),
        rho=rho,
        offset_var=np.full(s, offset),
        day_var=np.full(s, 2e-6),
    )


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(8, 60),
    rho=st.sampled_from(RHOS),
    ar_var=st.sampled_from([0.0, 1e-6, 1e-5]),
    white=st.sampled_from([0.0, 1e-5]),
    offset=st.sampled_from([0.0, 1e-6, 1e-4]),
    loss=st.floats(-0.05, 0.08),
    seed=st.integers(0, 2**16),
)
def test_the_fitted_loss_is_the_least_squares_step_at_the_onset_found(
    n: int, rho: float, ar_var: float, white: float, offset: float, loss: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    count_var = rng.uniform(2e-5, 2e-4, size=(1, n))
    day = (7 + np.arange(n)) // 24
    noise = _noise(1, rho, ar_var, white, offset)
    tau = int(rng.integers(1, n))
    r = rng.normal(0.0, 0.01, size=(1, n)) - loss * (np.arange(n) >= tau)
    lv = level_statistic(r, count_var, noise, 0.02, changes=n - 1, day=day)
    if lv.statistic[0] == 0.0:
        assert lv.loss.tolist() == [0.0] and lv.information.tolist() == [0.0]
        return
    u = (np.arange(n) >= lv.start[0]).astype(float)
    inv = np.linalg.inv(covariance(noise, count_var, 0, day))
    info = u @ inv @ u
    assert np.isclose(lv.information[0], info, rtol=1e-6)
    assert np.isclose(lv.loss[0], -(u @ inv @ r[0]) / info, rtol=1e-6, atol=1e-9)
    # The statistic is the likelihood ratio at that fit: I (δ δ̂ - δ²/2) > 0, so a loss
    # is found only where the fit is more than half the loss the test is tuned to.
    assert np.isclose(lv.statistic[0], info * (0.02 * lv.loss[0] - 0.02**2 / 2), rtol=1e-6)
    assert lv.loss[0] > 0.01


def test_the_fitted_loss_is_unbiased_and_its_variance_is_its_spread_under_the_model() -> None:
    # 2,000 series drawn from the exact covariance with a 3% loss from hour 40 of 72:
    # the onset is found, the fit's mean is the loss, and its z-scores have sd 1.
    rng = np.random.default_rng(7)
    s, n, tau, loss = 2000, 72, 40, 0.03
    count_var = np.tile(rng.uniform(2e-5, 1e-4, size=n), (s, 1))
    day = (5 + np.arange(n)) // 24
    noise = _noise(s, 0.9, 1e-5, 1e-5, 4e-6)
    chol = np.linalg.cholesky(covariance(noise, count_var, 0, day))
    r = rng.normal(size=(s, n)) @ chol.T - loss * (np.arange(n) >= tau)
    lv = level_statistic(r, count_var, noise, 0.02, changes=48, day=day)
    hit = lv.start == tau
    assert hit.mean() > 0.8
    z = (lv.loss[hit] - loss) * np.sqrt(lv.information[hit])
    assert abs(float(z.mean())) < 0.1
    assert 0.9 < float(z.std()) < 1.1


def _drop(family: str, seed: int) -> tuple[synthetic.SyntheticStore, int]:
    """The benchmark's drop ``seed``: 2% of CTR on the target from a 20:00 peak."""
    day = 31 + int(np.random.default_rng(seed).integers(0, 7))
    at = synthetic.peak_hour(synthetic.SyntheticSpec(), day)
    spec = synthetic.SyntheticSpec(
        days=(at + 72) // 24 + 1,
        seed=seed,
        incidents=(synthetic.Incident(*TARGET, 0.02, at),),
        **synthetic.NOISE_FAMILIES[family],
    )
    return synthetic.generate(spec), at


def test_the_level_tests_money_is_the_true_loss_a_day_after_a_drop() -> None:
    # The benchmark's calibration drops 1100-1102 (2% of CTR from a 20:00 peak), 24 h
    # on: the onset named is the true one, the money per hour since then is within
    # 20% of the truth (the target), and within 2 of its own standard
    # deviations. (With the level test's shop factor smoothed, #23, the `ar1` drop
    # 1101 states 15.2% too little, 8.3% before: 0.45 of its sd; over the ten
    # calibration drops 1100-1109 the median error at 24 h is 11% under `ar1`, 6%
    # under `day_to_day`, 7% independent; before 10%, 12%, 7%.)
    # Onsets searched over the last 48 h (DetectorConfig's 24 would put the true onset at
    # the edge of the search, where the money is left to the onset CUSUM: next test).
    cfg = replace(DetectorConfig(), level_changes_hours=48)
    for family, seed in (("day_to_day", 1100), ("ar1", 1101), ("independent", 1102)):
        store, at = _drop(family, seed)
        series, end = store.series, at + 24
        base = fit_baseline(series.window(end - 72 - REFERENCE, end - 72))
        s = series.keys.index(TARGET)
        got = LevelTest.at(base, series, end, cfg).onset(s)
        assert got is not None and got.variance is not None
        truth = store.truth_per_hour(s, at, end)
        assert got.start == at
        assert abs(got.at_risk_per_hour - truth) < min(0.2 * truth, 2 * np.sqrt(got.variance))
        assert np.sqrt(got.variance) < 0.2 * truth


def test_the_alert_states_the_estimate_money_estimate_names() -> None:
    # Day-to-day drop 1100, 5 h on: the level test has passed (and the sequential test);
    # "onset" states the onset CUSUM's, "level" the level test's fit, "inverse_variance"
    # their weighted mean, between the two.
    store, at = _drop("day_to_day", 1100)
    series, end = store.series, at + 5
    base = fit_baseline(series.window(end - 72 - REFERENCE, end - 72))
    s = series.keys.index(TARGET)
    cfg = DetectorConfig()
    (f,) = [f for f in evaluate(base, series, end, cfg) if f.series == s]
    assert f.level is not None and f.level.variance is not None
    assert f.stages == ("click_through",)
    cusum = onset(base, series, s, end, cfg, f.stages)
    assert money_at_risk(base, series, f, end, replace(cfg, money_estimate="onset")) == cusum
    assert money_at_risk(base, series, f, end, replace(cfg, money_estimate="level")) == f.level
    both = money_at_risk(base, series, f, end, replace(cfg, money_estimate="inverse_variance"))
    v_cusum = onset_variance(base, series, s, end, cfg, cusum.start)
    w = (1 / f.level.variance) / (1 / f.level.variance + 1 / v_cusum)
    assert np.isclose(
        both.at_risk_per_hour, w * f.level.at_risk_per_hour + (1 - w) * cusum.at_risk_per_hour
    )
    lo, hi = sorted((f.level.at_risk_per_hour, cusum.at_risk_per_hour))
    assert lo <= both.at_risk_per_hour <= hi
    # Without the level test's fit, or with another stage broken too, the onset CUSUM's.
    for other in (replace(f, level=None), replace(f, stages=("click_through", "conversion"))):
        assert money_at_risk(base, series, other, end, cfg) == onset(
            base, series, s, end, cfg, other.stages
        )


def test_an_onset_at_the_edge_of_the_search_leaves_the_money_to_the_onset_cusum() -> None:
    # 28 h after a drop the level test searches onsets in the last 24 h only: its onset
    # sits at the edge, the loss's first hours would count as the level before it, so
    # it states no money of its own.
    store, at = _drop("independent", 1102)
    series, end = store.series, at + 28
    base = fit_baseline(series.window(end - 72 - REFERENCE, end - 72))
    s = series.keys.index(TARGET)
    cfg = DetectorConfig()
    test = LevelTest.at(base, series, end, cfg)
    assert cfg.level_changes_hours == 24
    assert test.start is not None and int(test.start[s]) == test.first == end - 24
    assert test.onset(s) is None
