"""What the level test's false alerts are made of, and what the refits behind them knew.

For each real alert at level threshold ``--at`` that the other tests did not raise
(read from ``alerts_level_bootstrap.py``'s per-store cache of healthy replays), at the
hour it opened:

- the level residual's step (the mean since the onset the statistic picked less the
  mean before it, weights ``1 / count_var``) split into the series' own correlated
  noise as the simulator generated it, the shop factor's error against the shop's
  generated move, the baseline rate's error, and the sd the counting noise gives it;
- the statistic with the series' AR(1) at the generating values (the fitted white
  noise kept), and, written out (N x N), with the shop factor's posterior covariance
  in place of the white term the level model gives the factor;
- the refit behind it and the six before it: the shop's ``rho``, the pooled AR(1)
  variance with a delete-a-block jackknife sd of it (7 blocks of 4 days), and the
  series' own.

With ``--factor-stores``: over every third hour of those healthy stores, the home
series' shop-factor error in the step at onsets 3, 6 and 12 h back against what the
level model gives it (the factor's ``1 / (others + k)`` taken as white noise).

``python benchmarks/alerts_level_parts.py --family ar1 --cache DIR --seeds 2004,3001
[--at 10.0] [--factor-stores 1000,1001]`` (a diagnosis; calibration and read blocks
only: seeds of 8000 and up are refused).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from shelfwise.monitoring.calibrate import REFIT_EVERY
from shelfwise.monitoring.detector import (
    Baseline,
    DetectorConfig,
    LevelTest,
    fit_baseline,
    level_residuals,
)
from shelfwise.monitoring.level import (
    MAX_LAG,
    _ar_columns,
    _equations,
    _free_fit,
    _two_nonnegative,
    covariance,
)
from shelfwise.monitoring.series import FloatArray, HourlySeries, hour_of_week
from shelfwise.monitoring.synthetic import (
    CATEGORY_SHARES,
    MODULES,
    NOISE_FAMILIES,
    SyntheticSpec,
    correlated_ctr_noise,
    generate,
)

REFERENCE, LOOKBACK, HEALTHY_HOURS = 28 * 24, 72, 30 * 24  # as benchmarks/alerts.py
BLOCKS = 7
MEMORY = 7
FRESH = 8000


def store(family: str, seed: int) -> tuple[HourlySeries, FloatArray, FloatArray]:
    """The healthy store's series, each series' own correlated log-CTR noise (S, T) and
    the shop's (T,), as generated."""
    if seed >= FRESH:
        raise SystemExit(f"seeds {FRESH}+ are the fresh block: read once, to confirm a change")
    days = (REFERENCE + LOOKBACK + HEALTHY_HOURS) // 24
    spec = SyntheticSpec(days=days, seed=seed, **NOISE_FAMILIES[family])
    if spec.ctr_weekend_lift:
        raise SystemExit("a weekend lift is neither a series' own nor the shop's move here")
    series = generate(spec).series
    # Each series' own part comes from its own generator: with every series on its own
    # (share 1) it is drawn alone, then scaled as the shared spec scales it.
    share = spec.ctr_local_share
    own = correlated_ctr_noise(
        replace(spec, ctr_local_share=1.0), len(series.keys), series.epoch_hours
    )
    own = own * np.sqrt(share)
    shop = correlated_ctr_noise(spec, len(series.keys), series.epoch_hours)[0] - own[0]
    return series, own, shop


def refit(series: HourlySeries, t: int) -> Baseline:
    hi = t - LOOKBACK
    return fit_baseline(series.window(hi - REFERENCE, hi), (3, 12), LOOKBACK)


def pooled_fit(base: Baseline, series: HourlySeries, t: int) -> tuple[float, float]:
    """The refit's pooled AR(1) variance at its ``rho`` and its delete-a-block jackknife sd
    (the unconstrained pooled fit, each block's hours weighted ~0)."""
    assert base.level is not None
    hi = t - LOOKBACK
    ref = series.window(hi - REFERENCE, hi)
    r, cv, _, _ = level_residuals(base, ref)
    day = ref.epoch_hours // 24
    rho = base.level.rho

    def fit(count_var: FloatArray, constrained: bool) -> float:
        _, y, ins, outs, p, g0 = _equations(r, count_var, day, MAX_LAG, True)
        a = _ar_columns(rho, ins, outs, g0)
        y1, a1, p1 = y.reshape(1, -1), a.reshape(1, -1), p.reshape(1, -1)
        u = _two_nonnegative(y1, a1, p1)[0] if constrained else _free_fit(y1, a1, p1, True)[0]
        return float(u[0])

    block = (day - day[0]) * BLOCKS // (int(day[-1] - day[0]) + 1)
    jack = np.array([fit(np.where((block == b)[None, :], 1e12, cv), False) for b in range(BLOCKS)])
    sd = float(np.sqrt((BLOCKS - 1) / BLOCKS * ((jack - jack.mean()) ** 2).sum()))
    return fit(cv, True), sd


def dense_statistic(r: FloatArray, cov: FloatArray, drop: float, changes: int) -> float:
    """The level statistic of one series' residuals ``r`` (N,) under a written-out
    covariance (N, N): the largest change-point log-likelihood ratio over the last
    ``changes`` onsets (:func:`.level.level_statistic` without its O(N) algebra)."""
    n = r.size
    step = np.tril(np.ones((n, n)))[:, n - changes :]
    sol = np.linalg.solve(cov, np.concatenate([r[:, None], step], axis=1))
    m_r = -drop * (step * sol[:, :1]).sum(0)
    m_m = drop**2 * (step * sol[:, 1:]).sum(0)
    return float(max((m_r - m_m / 2.0).max(), 0.0))


def with_factor_posterior(base: Baseline, cur: HourlySeries, k: int) -> FloatArray:
    """Series ``k``'s level covariance with the shop factor's posterior covariance
    ``C - C (Σ_m + C)⁻¹ C`` (``Σ_m`` the shop's move under its own noise model, ``C`` the
    other series' counting variance; what :func:`.level.shop_move` conditions on) in
    place of the white ``1 / (others + k)`` the level model gives the factor."""
    assert base.level is not None and base.shop_level is not None
    _, cv, _, _ = level_residuals(base, cur)
    day = cur.epoch_hours // 24
    expected = cur.impressions * base.ctr[:, hour_of_week(cur.epoch_hours)]
    others = expected.sum(0) - expected[k]
    c = np.diag(1.0 / np.maximum(others, 1.0))
    shop = covariance(base.shop_level, np.zeros((1, cur.hours)), 0, day)
    posterior = c - c @ np.linalg.solve(shop + c, c)
    white = np.diag(1.0 / np.maximum(others + base.prior[1][0], 1.0))
    out: FloatArray = covariance(base.level, cv, k, day) - white + posterior
    return out


def weighted_step(v: FloatArray, w: FloatArray, onset: int) -> float:
    a, b = slice(onset, None), slice(0, onset)
    return float((v[a] * w[a]).sum() / w[a].sum() - (v[b] * w[b]).sum() / w[b].sum())


def parts(family: str, seed: int, alerts: list[tuple[int, int]], cfg: DetectorConfig) -> None:
    series, own, shop = store(family, seed)
    start = series.hours - HEALTHY_HOURS
    ctr = np.array([m.ctr for m in MODULES for _ in CATEGORY_SHARES])
    local = NOISE_FAMILIES[family]
    for hour, k in alerts:
        t = start + 1 + hour
        refit_at = start + 1 + (hour // REFIT_EVERY) * REFIT_EVERY
        base = refit(series, refit_at)
        assert base.level is not None
        lv = base.level
        test = LevelTest.at(base, series, t, cfg)
        assert test.start is not None
        lo = t - cfg.level_window_hours
        cur = series.window(lo, t)
        r, cv, mu, _ = level_residuals(base, cur)
        onset = int(test.start[k]) - lo
        how = hour_of_week(cur.epoch_hours)
        factor = mu[k] / np.maximum(cur.impressions[k] * base.ctr[k, how], 1e-9)
        w = 1.0 / cv[k]
        step_r = weighted_step(r[k], w, onset)
        step_own = weighted_step(own[k, lo:t], w, onset)
        # r falls where the factor rises more than the shop moved, or the rate is too high.
        factor_err = -weighted_step(np.log(factor) - shop[lo:t], w, onset)
        rate_err = -weighted_step(base.ctr[k, how] / ctr[k] - 1.0, w, onset)
        counting = float(np.sqrt(1.0 / w[onset:].sum() + 1.0 / w[:onset].sum()))
        ar_sd = float(local.get("ctr_ar_sd", 0.0)) * np.sqrt(
            float(local.get("ctr_local_share", 1.0))
        )
        true_ar = replace(
            lv,
            ar_var=np.where(np.arange(lv.white.size) == k, ar_sd**2, lv.ar_var),
            rho=float(local.get("ctr_ar_rho", lv.rho)),
            day_var=None
            if lv.day_var is None
            else np.where(np.arange(lv.white.size) == k, 0.0, lv.day_var),
        )
        at_true = float(LevelTest.at(replace(base, level=true_ar), series, t, cfg).statistic[k])
        day = cur.epoch_hours // 24
        changes = min(cfg.level_changes_hours, cur.hours - 1)
        dense = dense_statistic(r[k], covariance(lv, cv, k, day), cfg.sequential_drop, changes)
        factor_cov = dense_statistic(
            r[k], with_factor_posterior(base, cur, k), cfg.sequential_drop, changes
        )
        print(
            f"{seed:5} {series.keys[k][1]:9} hour {hour:3}: statistic {test.statistic[k]:5.1f}"
            f" ({t - lo - onset} h since the onset); step in r {step_r:+.2%} = own {step_own:+.2%}"
            f" + factor {factor_err:+.2%} + rate {rate_err:+.2%} + rest (counting sd"
            f" {counting:.2%}); at the generating AR(1) {at_true:5.1f}; written out"
            f" {dense:5.1f}, with the factor's posterior covariance {factor_cov:5.1f}"
        )
        rows = []
        for back in range(MEMORY - 1, -1, -1):
            at = refit_at - back * REFIT_EVERY
            if at - LOOKBACK - REFERENCE < 0:
                continue
            b = base if back == 0 else refit(series, at)
            assert b.level is not None
            pooled, sd = pooled_fit(b, series, at)
            rows.append((b.level.rho, pooled, sd, float(b.level.ar_var[k])))
        x = np.array(rows)
        print(
            f"      refit: rho {x[-1, 0]:g}, pooled AR variance {x[-1, 1] * 1e5:.2f}e-5"
            f" (jackknife sd {x[-1, 2] * 1e5:.2f}), the series' {x[-1, 3] * 1e5:.2f};"
            f" the last {len(x)} refits: rho {'/'.join(f'{v:g}' for v in x[:, 0])}, pooled mean"
            f" {x[:, 1].mean() * 1e5:.2f}, the series' mean {x[:, 3].mean() * 1e5:.2f}",
            flush=True,
        )


def factor_errors(family: str, seeds: list[int], cfg: DetectorConfig) -> None:
    onsets = (3, 6, 12)
    err: dict[int, list[float]] = {m: [] for m in onsets}
    model: dict[int, list[float]] = {m: [] for m in onsets}
    for seed in seeds:
        series, _, shop = store(family, seed)
        start = series.hours - HEALTHY_HOURS
        home = [i for i, key in enumerate(series.keys) if key[0] == MODULES[0].placement]
        base: Baseline | None = None
        for hour in range(0, HEALTHY_HOURS, 3):
            t = start + 1 + hour
            if base is None or hour % REFIT_EVERY < 3:
                base = refit(series, start + 1 + (hour // REFIT_EVERY) * REFIT_EVERY)
            lo = t - cfg.level_window_hours
            cur = series.window(lo, t)
            _, cv, mu, _ = level_residuals(base, cur)
            expected = cur.impressions * base.ctr[:, hour_of_week(cur.epoch_hours)]
            others = expected.sum(0, keepdims=True) - expected
            white = 1.0 / np.maximum(others + base.prior[1][0], 1.0)
            for k in home:
                w = 1.0 / cv[k]
                fe = np.log(mu[k] / np.maximum(expected[k], 1e-9)) - shop[lo:t]
                n = cur.hours
                for m in onsets:
                    err[m].append(weighted_step(fe, w, n - m))
                    a, b = slice(n - m, n), slice(0, n - m)
                    var = (w[a] ** 2 * white[k, a]).sum() / w[a].sum() ** 2
                    model[m].append(float(var + (w[b] ** 2 * white[k, b]).sum() / w[b].sum() ** 2))
    print(f"the shop factor's error in the step, home series of stores {seeds}, every third hour:")
    for m in onsets:
        print(
            f"   onset {m:2} h back: sd {np.std(err[m]):.3%}, the model's white term"
            f" {np.sqrt(np.mean(model[m])):.3%} ({len(err[m])} steps)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="ar1")
    parser.add_argument("--cache", type=Path, required=True, help="alerts_level_bootstrap's")
    parser.add_argument("--seeds", default="", help="comma-separated healthy seeds in the cache")
    parser.add_argument("--at", default="10.0", help="level threshold, as the cache keys it")
    parser.add_argument("--factor-stores", default="", help="comma-separated healthy seeds")
    args = parser.parse_args()
    cfg = DetectorConfig()
    for seed in (int(s) for s in filter(None, args.seeds.split(","))):
        d = json.loads((args.cache / "real" / f"{args.family}_{seed}.json").read_text())
        others = d["counted"]["0.0"]
        alerts = [(int(h), int(k)) for h, k in d["counted"][args.at] if [h, k] not in others]
        parts(args.family, seed, alerts, cfg)
    if args.factor_stores:
        factor_errors(args.family, [int(s) for s in args.factor_stores.split(",")], cfg)


if __name__ == "__main__":
    main()
