"""What a better measurement of the shop's move could buy the level test: its ceiling.

The level test (``monitoring.level``) divides each series' clicks by its baseline
times the shop's factor, measured on the other series of the shop
(:func:`.detector.level_residuals`). That factor's error (the others' counting
noise, their own hourly jitter and AR(1), its smoothing) is part of every level
residual's step. A better measurement (site-wide counts, more series) can at most
take it all away. This replays the alerts benchmark's healthy stores and
calibration drops (``alerts_level_bootstrap.py``'s caches, the same tables) with
the level test's factor replaced by one the simulator knows:

- ``exact``: the others' expected clicks at the shop's generated move, over their
  baseline expectation (no counting noise, none of the others' own noise: the
  shop's move measured perfectly, as the baseline sees it);
- ``nocount``: the others' true click-through rates as generated (their jitter
  and own AR(1) kept, the counting noise gone: the limit of ever more counts of
  the same series);
- ``gls``: what the detector could do with the same counts: the others weighed by
  the inverse of their hourly variance (counting ``1 / expected`` plus their own
  noise, the simulator's 0.5% jitter and the own AR(1)'s marginal 1e-5: told, so a
  bound for any fitted weighting) instead of by their expected clicks, then smoothed
  by the shop's noise model as the detector does; its white term the weighted
  mean's variance;
- ``posterior``: the detector's factor, its error modelled as what the smoothing
  leaves (:func:`factor_posterior_variance`: ``C - C (Σ_m + C)⁻¹ C`` per hour, ``Σ_m``
  the shop's move under its fitted noise, ``C`` the others' counting variance) in
  place of the white ``1 / (others + k)``, in the fit and the statistic alike (its
  diagonal: session 20 found its lag-6 correlation <= 0.02);
- ``main``: the detector's own factor (the same replay, a control).

The factor's white counting term ``1 / (others + k)`` leaves ``count_var`` with
either oracle. The window and sequential tests keep the detector's factor.

``python benchmarks/alerts_level_factor.py --factor exact -- --family ar1 --real
1000-1013 --drawn 1000 --draws 1 --drops 60 --cache DIR`` (everything after
``--`` goes to ``alerts_level_bootstrap.py``; a diagnosis, calibration and read
blocks only: seeds of 8000 and up are refused there).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

import shelfwise.monitoring.detector as detector
from shelfwise.monitoring.detector import Baseline, shop_factor
from shelfwise.monitoring.level import LevelNoise, precision_times, tiled
from shelfwise.monitoring.series import FloatArray, HourlySeries, hour_of_week
from shelfwise.monitoring.synthetic import (
    CATEGORY_SHARES,
    MODULES,
    SyntheticSpec,
    SyntheticStore,
    correlated_ctr_noise,
    generate,
    traffic_shape,
)

FACTORS = ("main", "exact", "nocount", "gls", "posterior")
CHUNK = 48  # hours: the posterior of a long window in chunks of 96 (factor_posterior_variance)
LEVEL_RESIDUALS = detector.level_residuals  # the detector's own
OWN_VAR = 0.005**2 + 1e-5  # ar1: each series' own hourly jitter and AR(1) marginal


@dataclass
class Truth:
    """The generated store's first epoch hour, each series' true CTR (S, T) with its
    incidents, and the CTR at the shop's move alone (S, T)."""

    epoch0: int
    ctr: FloatArray
    shop_ctr: FloatArray


TRUTH: list[Truth] = []


def generate_with_truth(spec: SyntheticSpec) -> tuple[SyntheticStore, Truth]:
    """:func:`.synthetic.generate`, replayed draw for draw, with the true rates kept."""
    store = generate(spec)
    rng = np.random.default_rng(spec.seed)
    hours = spec.days * 24
    keys = store.series.keys
    epoch = store.series.epoch_hours
    shape = traffic_shape(epoch)
    season = 1.0 + (spec.peak_season_lift - 1.0) * np.clip(
        (np.arange(hours) - (hours - 7 * 24)) / (7 * 24), 0.0, 1.0
    )
    day_noise = np.repeat(rng.lognormal(0.0, 0.05, size=(len(keys), spec.days)), 24, axis=1)
    lam = np.array([m.peak_impressions * share for m in MODULES for _, share in CATEGORY_SHARES])
    ctr = np.array([m.ctr for m in MODULES for _ in CATEGORY_SHARES])
    impressions = rng.poisson(lam[:, None] * shape[None, :] * season[None, :] * day_noise)
    assert np.array_equal(impressions, store.series.impressions), "synthetic.generate changed"
    loss = np.zeros((len(keys), hours))
    for inc in spec.incidents:
        loss[keys.index((inc.placement, inc.category)), inc.start_hour :] = inc.ctr_loss
    jitter = rng.lognormal(0.0, spec.ctr_jitter, size=impressions.shape)
    noise = correlated_ctr_noise(spec, len(keys), epoch)
    # The shop's part alone: the same spec with every series' own part at 0.
    share = float(np.clip(spec.ctr_local_share, 0.0, 1.0))
    alone = replace(spec, ctr_local_share=1.0, ctr_weekend_lift=0.0)
    own = correlated_ctr_noise(alone, len(keys), epoch) * np.sqrt(share)
    shop = noise - own  # (S, T): the same row for every series, plus the weekend lift
    true_ctr = ctr[:, None] * jitter * np.exp(noise) * (1.0 - loss)
    return store, Truth(int(epoch[0]), true_ctr, ctr[:, None] * np.exp(shop))


def oracle_residuals(
    base: Baseline, cur: HourlySeries, which: str
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """:func:`.detector.level_residuals` with the shop's factor from the simulator's truth."""
    truth = TRUTH[-1]
    cols = cur.epoch_hours - truth.epoch0
    how = hour_of_week(cur.epoch_hours)
    expected = cur.impressions * base.ctr[:, how]
    rates = truth.shop_ctr if which == "exact" else truth.ctr
    true_clicks = cur.impressions * rates[:, cols]
    others = expected.sum(0, keepdims=True) - expected
    factor = (true_clicks.sum(0, keepdims=True) - true_clicks) / np.maximum(others, 1e-9)
    mu = expected * factor
    r = np.where(mu > 0, cur.clicks / np.maximum(mu, 1e-9) - 1.0, 0.0)
    count_var = 1.0 / np.maximum(mu, 1.0)
    value = base.conversion[:, how] * base.order_value[:, None]
    return r, count_var, mu, value


def weighted_others(
    clicks: FloatArray, expected: FloatArray, own_var: float
) -> tuple[FloatArray, FloatArray]:
    """Per series and hour (S, N): the other series' relative residual ``clicks /
    expected - 1``, each weighed by ``1 / (1 / expected + own_var)`` (the inverse of its
    hourly variance), and the sum of their weights (the mean's variance is its inverse).
    ``own_var`` 0: weighed by expected clicks, the detector's ratio of sums."""
    y_all = np.where(expected > 0, clicks / np.maximum(expected, 1e-9) - 1.0, 0.0)
    w_all = np.where(expected > 0, 1.0 / (1.0 / np.maximum(expected, 1e-9) + own_var), 0.0)
    others_w = w_all.sum(0, keepdims=True) - w_all
    y = ((w_all * y_all).sum(0, keepdims=True) - w_all * y_all) / np.maximum(others_w, 1e-9)
    return y, others_w


def gls_residuals(
    base: Baseline, cur: HourlySeries
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """:func:`.detector.level_residuals` with the others weighed by the inverse of their
    hourly variance (counting plus :data:`OWN_VAR`) instead of by their expected clicks."""
    how = hour_of_week(cur.epoch_hours)
    expected = cur.impressions * base.ctr[:, how]
    y, others_w = weighted_others(cur.clicks, expected, OWN_VAR)
    var = 1.0 / np.maximum(others_w, 1.0)
    assert base.shop_level is not None
    factor = shop_factor(base.shop_level, y, var, cur.epoch_hours // 24)
    mu = expected * factor
    r = np.where(mu > 0, cur.clicks / np.maximum(mu, 1e-9) - 1.0, 0.0)
    count_var = 1.0 / np.maximum(mu, 1.0) + 1.0 / np.maximum(others_w + base.prior[1][0], 1.0)
    value = base.conversion[:, how] * base.order_value[:, None]
    return r, count_var, mu, value


def factor_posterior_variance(shop: LevelNoise, var: FloatArray, day: np.ndarray) -> FloatArray:
    """Per series and hour (S, N): the variance of the shop's move given the others'
    residuals with counting variance ``var`` (S, N) under the shop's noise model ``shop``
    (what :func:`.level.shop_move` conditions on): ``diag(C - C (Σ_m + C)⁻¹ C)``.

    Windows longer than ``2 CHUNK`` hours (the reference) are taken in overlapping
    chunks of ``2 CHUNK``, each keeping its middle (an hour's posterior rests on the
    hours within a day or two of it; the chunk's offset stands for the window's)."""
    s, n = var.shape
    if n > 2 * CHUNK:
        out = np.empty_like(var)
        for lo in range(0, n, CHUNK):
            a = max(min(lo - CHUNK // 2, n - 2 * CHUNK), 0)
            part = factor_posterior_variance(
                shop, var[:, a : a + 2 * CHUNK], day[a : a + 2 * CHUNK]
            )
            out[:, lo : lo + CHUNK] = part[:, lo - a : lo - a + CHUNK]
        return out
    eye = np.ascontiguousarray(np.broadcast_to(np.eye(n), (s, n, n)))
    inverse = precision_times(tiled(shop, s), var, eye, day)
    out: FloatArray = var - var**2 * np.einsum("snn->sn", inverse)
    return out


def posterior_residuals(
    base: Baseline, cur: HourlySeries
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """:func:`.detector.level_residuals` with the factor's white counting term replaced
    by its posterior variance (:func:`factor_posterior_variance`)."""
    r, _, mu, value = LEVEL_RESIDUALS(base, cur)
    assert base.shop_level is not None
    expected = cur.impressions * base.ctr[:, hour_of_week(cur.epoch_hours)]
    others = 1.0 / np.maximum(expected.sum(0, keepdims=True) - expected, 1.0)
    posterior = factor_posterior_variance(base.shop_level, others, cur.epoch_hours // 24)
    return r, 1.0 / np.maximum(mu, 1.0) + posterior, mu, value


def install(which: str) -> None:
    """Route the alerts benchmark's stores through :func:`generate_with_truth` and the
    level test's residuals through :func:`oracle_residuals` (``main``: nothing)."""
    if which == "main":
        return
    if which in ("gls", "posterior"):
        chosen = gls_residuals if which == "gls" else posterior_residuals
        detector.level_residuals = chosen  # type: ignore[assignment]
        return
    import alerts  # benchmarks/ is on sys.path when run as a script

    def generate_recorded(spec: SyntheticSpec) -> SyntheticStore:
        store, truth = generate_with_truth(spec)
        TRUTH[:] = [truth]
        return store

    def residuals(base: Baseline, cur: HourlySeries) -> Any:
        return oracle_residuals(base, cur, which)

    alerts.generate = generate_recorded  # type: ignore[attr-defined]
    detector.level_residuals = residuals  # type: ignore[assignment]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factor", choices=FACTORS, required=True)
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="alerts_level_bootstrap's")
    args = parser.parse_args()
    install(args.factor)
    import alerts_level_bootstrap

    rest = args.rest[1:] if args.rest[:1] == ["--"] else args.rest
    sys.argv = ["alerts_level_bootstrap.py", *rest]
    alerts_level_bootstrap.main()


if __name__ == "__main__":
    main()
