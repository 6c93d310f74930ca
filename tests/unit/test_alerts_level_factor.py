"""The shop factor's ceiling for the level test (benchmarks/alerts_level_factor.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from benchmarks.alerts_level_factor import generate_with_truth, oracle_residuals, weighted_others

from shelfwise.monitoring.synthetic import (
    CATEGORY_SHARES,
    MODULES,
    NOISE_FAMILIES,
    Incident,
    SyntheticSpec,
    generate,
)

CTR = np.array([m.ctr for m in MODULES for _ in CATEGORY_SHARES])


def _spec(**extra: Any) -> SyntheticSpec:
    return SyntheticSpec(days=3, seed=1003, **NOISE_FAMILIES["ar1"], **extra)


def test_the_truth_comes_from_the_same_draws_as_the_store() -> None:
    spec = _spec(incidents=(Incident("home_top_picks", "bedding", 0.02, 30),))
    store, truth = generate_with_truth(spec)
    again = generate(spec).series
    assert np.array_equal(store.series.clicks, again.clicks)
    assert truth.epoch0 == int(store.series.epoch_hours[0])
    # The shop's move is one row for every series (over each module's rate) ...
    move = truth.shop_ctr / CTR[:, None]
    assert np.allclose(move, move[:1])
    # ... of about the family's shared sd (0.95%), and the series' own part beside it
    # (jitter 0.5%, own AR(1) 0.32%) with the loss on the incident's series from its hour.
    assert 0.003 < float(np.log(move[0]).std()) < 0.02
    own = np.log(truth.ctr / truth.shop_ctr)
    own[0, 30:] -= np.log(0.98)
    assert 0.004 < float(own.std()) < 0.008
    # The clicks follow the true rate: their ratio's mean is ~1 on the busy series.
    ratio = store.series.clicks[:8].sum() / (store.series.impressions[:8] * truth.ctr[:8]).sum()
    assert ratio == pytest.approx(1.0, abs=0.002)


def test_the_exact_factor_is_the_shops_move_over_the_baseline() -> None:
    import benchmarks.alerts_level_factor as tool

    store, truth = generate_with_truth(_spec())
    tool.TRUTH[:] = [truth]
    series = store.series
    # A baseline at each module's long-run rate: the factor is then the shop's move itself.
    base: Any = SimpleNamespace(
        ctr=np.repeat(CTR[:, None], 168, axis=1),
        conversion=np.full((32, 168), 0.05),
        order_value=np.full(32, 60.0),
    )
    cur = series.window(10, 40)
    r, count_var, mu, value = oracle_residuals(base, cur, "exact")
    move = (truth.shop_ctr / CTR[:, None])[0, 10:40]
    assert np.allclose(mu, cur.impressions * CTR[:, None] * move[None, :])
    assert np.allclose(count_var, 1.0 / np.maximum(mu, 1.0))
    assert np.allclose(r, cur.clicks / mu - 1.0)
    assert value.shape == (32, 30)
    # Without counting noise the others' true rates: the series' own noise is left in.
    _, _, mu_n, _ = oracle_residuals(base, cur, "nocount")
    assert not np.allclose(mu_n, mu)
    assert np.allclose(mu_n / mu, 1.0, atol=0.02)


def test_others_weighed_by_their_variance() -> None:
    clicks = np.array([[110.0], [50.0], [2.0]])
    expected = np.array([[100.0], [50.0], [1.0]])
    # No own noise: each series' others by their expected clicks (a ratio of sums).
    y, w = weighted_others(clicks, expected, 0.0)
    assert y[0, 0] == pytest.approx(52.0 / 51.0 - 1.0)
    assert y[2, 0] == pytest.approx(160.0 / 150.0 - 1.0)
    assert w[:, 0] == pytest.approx([51.0, 101.0, 150.0])
    # Own noise far larger than the counting noise: the others' plain mean.
    y, _ = weighted_others(clicks, expected, 1e6)
    assert y[1, 0] == pytest.approx((0.1 + 1.0) / 2.0, rel=1e-4)


def test_the_factors_posterior_variance_against_the_written_out_covariance() -> None:
    import benchmarks.alerts_level_factor as tool

    from shelfwise.monitoring.level import LevelNoise, covariance

    rng = np.random.default_rng(3)
    n = 120
    day = np.arange(n) // 24
    shop = LevelNoise(
        white=np.array([2e-6]),
        ar_var=np.array([9e-5]),
        rho=0.9,
        offset_var=np.array([1e-6]),
        day_var=np.array([5e-7]),
    )
    var = rng.uniform(0.5e-5, 5e-5, size=(2, n))
    out = tool.factor_posterior_variance(shop, var, day)
    sigma_m = covariance(shop, np.zeros((1, n)), 0, day)
    for s in range(2):
        c = np.diag(var[s])
        dense = c - c @ np.linalg.solve(sigma_m + c, c)
        assert np.allclose(out[s], np.diag(dense), rtol=1e-4, atol=1e-12)
    # Smoothing keeps less than the counting variance, and more at the window's ends.
    assert np.all(out < var)
    ratio = out[0] / var[0]
    assert ratio[-1] > np.median(ratio) and ratio[0] > np.median(ratio)
    # In chunks (a long window): within a few tenths of a percent of the whole.
    n = 400
    day = np.arange(n) // 24
    var = rng.uniform(0.5e-5, 5e-5, size=(1, n))
    whole = tool.factor_posterior_variance(shop, var[:, : 2 * tool.CHUNK], day[: 2 * tool.CHUNK])
    chunked = tool.factor_posterior_variance(shop, var, day)
    assert chunked.shape == (1, n)
    assert np.allclose(chunked[:, : tool.CHUNK], whole[:, : tool.CHUNK], rtol=1e-9)
    sigma_m = covariance(shop, np.zeros((1, n)), 0, day)
    c = np.diag(var[0])
    dense = np.diag(c - c @ np.linalg.solve(sigma_m + c, c))
    assert np.allclose(chunked[0], dense, rtol=0.01)
