"""An ORACLE for the alerts benchmark: how fast a 2% CTR drop can be found at all.

Not the product. This detector is told what no detector in a shop can know:
the series' true click-through rate, the noise family and its parameters, and
(variant ``told``) the shop-wide part of the CTR's move hour by hour, so only
the series' own noise is left: counting noise, the 0.5% hourly jitter and the
series' own share of the day / AR(1) / walk noise. Variant ``measured`` is
not told the shop's move and measures it on the other series with their true
rates (the shop factor's counting noise is added to the variance; the other
series' own correlated noise is not modelled, so it is slightly optimistic).

At every hour ``t`` it takes the relative residuals of the last ``N`` hours,
``r = clicks / (impressions x CTR x shop move) - 1``, as Gaussian with the exact
covariance of the family (``diag(1 / expected clicks + jitter²) + K``, ``K`` the
series' own day-shift / AR(1) / random-walk covariance), and computes the
log-likelihood ratio of "the CTR fell by exactly 2% at hour τ" against
"nothing changed" for every τ in the last 72 hours; the statistic is the
largest (a CUSUM with the known shift and the true model: for a known change
size this is the optimal detector up to the max-vs-mixture choice). The
threshold is set on **calibration seeds** (healthy series, 30 days each,
episodes counted as the product counts them: one per alert that opens after
24 quiet hours) to the lowest value with at most 1 false alert a month per
200 series, and figures are reported on **test seeds** (the product's drop
seeds 100+, healthy seeds 0+).

The oracle only looks at series with enough clicks for the Gaussian
approximation (``home_top_picks`` and ``product_similar``, ≥ 180 clicks an
hour at night). A fixed threshold on the log-likelihood ratio alerts most
often on the busiest series (where 2% is the most standard deviations), so
calibrating on them is the conservative choice for the target series.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from shelfwise.monitoring.calibrate import opened
from shelfwise.monitoring.level import tridiagonal_solve
from shelfwise.monitoring.synthetic import (
    MODULES,
    NOISE_FAMILIES,
    SyntheticSpec,
    _correlated,
    correlated_ctr_noise,
    generate,
)

REFERENCE = 28 * 24
LOOKBACK = 72
HEALTHY_HOURS = 30 * 24
DETECT_WITHIN = 72
RESOLVE_AFTER = 24
DROP = 0.02
WINDOW = 120  # hours of residuals per evaluation
CHANGES = 72  # candidate change hours: the last 72
BUSY = ("home_top_picks", "product_similar")
TARGET_KEY = ("home_top_picks", "bedding")
FAMILIES = ("independent", "day_to_day", "ar1", "slow_drift", "weekly")


@dataclass
class Residuals:
    """Per series and hour: relative residual and its independent variance, and the spec."""

    r: np.ndarray  # (S, T)
    v: np.ndarray  # (S, T)
    spec: SyntheticSpec
    keys: list[tuple[str, str]]


def residuals(spec: SyntheticSpec, variant: str) -> Residuals:
    store = generate(spec)
    s = store.series
    ctr = np.array([m.ctr for m in MODULES for _ in range(len(s.keys) // len(MODULES))])
    share = float(np.clip(spec.ctr_local_share, 0.0, 1.0))
    total = correlated_ctr_noise(spec, len(s.keys), s.epoch_hours)
    local = _correlated(
        spec, np.random.default_rng([spec.seed, 1]), len(s.keys), s.epoch_hours, 1.0
    )
    local *= np.sqrt(share)
    shop = total - local  # the shop's part (and the weekend lift): identical in every row
    expected = s.impressions * ctr[:, None]
    jitter2 = spec.ctr_jitter**2
    if variant == "told":
        mu = expected * np.exp(shop)
        v = 1.0 / np.maximum(mu, 1.0) + jitter2
    else:
        # The shop's move measured on the other series (true rates, leave one out).
        others_o = s.clicks.sum(0, keepdims=True) - s.clicks
        others_e = expected.sum(0, keepdims=True) - expected
        f = others_o / np.maximum(others_e, 1.0)
        mu = expected * f
        w2 = ((expected / np.maximum(others_e, 1.0)) ** 2).sum(0, keepdims=True)  # rough
        v = 1.0 / np.maximum(mu, 1.0) + jitter2 + 1.0 / np.maximum(others_o, 1.0) + jitter2 * w2
    r = s.clicks / np.maximum(mu, 1e-9) - 1.0
    return Residuals(r, v, spec, s.keys)


def precision_times(
    spec: SyntheticSpec, c0: np.ndarray, dinv: np.ndarray, x: np.ndarray
) -> np.ndarray:
    """``Σ⁻¹ x`` for ``Σ = D + K`` (``D⁻¹`` = ``dinv`` (B, N); ``K`` the series' own
    day / AR(1) / walk covariance of the window whose first column is ``c0`` (B,)),
    ``x`` (B, N, R). Woodbury: ``Σ⁻¹ = D⁻¹ - D⁻¹ (K⁻¹ + D⁻¹)⁻¹ D⁻¹``, where ``K⁻¹`` is
    tridiagonal (AR(1), walk) or ``K`` is one constant block per UTC day."""
    share = float(np.clip(spec.ctr_local_share, 0.0, 1.0))
    dx = dinv[:, :, None] * x
    n = dinv.shape[1]
    if spec.ctr_day_sd:
        var = spec.ctr_day_sd**2 * share
        day = (c0[:, None] + np.arange(n)[None, :]) // 24
        day = day - day[:, :1]  # 0 .. 5 within the window
        out = dx.copy()
        for d in range(int(day.max()) + 1):
            block = (day == d).astype(float)  # (B, N)
            s1 = (block * dinv).sum(1)  # 1ᵀ D⁻¹ 1
            sx = (block[:, :, None] * dx).sum(1)  # 1ᵀ D⁻¹ x  (B, R)
            out -= (block * dinv)[:, :, None] * (sx / (1.0 / var + s1)[:, None])[:, None, :]
        return out
    if spec.ctr_ar_sd:
        var, rho = spec.ctr_ar_sd**2 * share, spec.ctr_ar_rho
        scale = 1.0 / (var * (1.0 - rho**2))
        base = np.full(n, 1.0 + rho**2)
        base[0] = base[-1] = 1.0
        diag = scale * base[None, :] + dinv
        return dx - dinv[:, :, None] * tridiagonal_solve(diag, -scale * rho, dx)
    if spec.ctr_drift_per_day:
        q = spec.ctr_drift_per_day**2 * share / 24.0
        base = np.full((dinv.shape[0], n), 2.0 / q)
        base[:, -1] = 1.0 / q
        base[:, 0] = 1.0 / q + 1.0 / (q * (c0 + 1.0))
        return dx - dinv[:, :, None] * tridiagonal_solve(base + dinv, -1.0 / q, dx)
    return dx


def statistics(res: Residuals, rows: list[int], ends: range, chunk: int = 48) -> np.ndarray:
    """The oracle's statistic (len(rows), len(ends)) at each evaluation ``t`` in ``ends``
    (data of columns ``t - WINDOW .. t - 1``)."""
    n = WINDOW
    step = np.tril(np.ones((n, n)))[:, n - CHANGES :]  # column j: 1 from change hour on
    ends_a = np.array(list(ends))
    out = np.zeros((len(rows), ends_a.size))
    for lo in range(0, ends_a.size, chunk):
        t = ends_a[lo : lo + chunk]
        cols = t[:, None] - n + np.arange(n)[None, :]  # (H, N)
        rr = res.r[rows][:, cols].reshape(-1, n)  # (S*H, N)
        dinv = 1.0 / res.v[rows][:, cols].reshape(-1, n)
        c0 = np.tile(cols[:, 0], len(rows))
        x = np.concatenate([rr[:, :, None], np.broadcast_to(step, (rr.shape[0], n, CHANGES))], 2)
        px = precision_times(res.spec, c0, dinv, x)
        m_y = -DROP * (step[None, :, :] * px[:, :, :1]).sum(1)  # m_τᵀ Σ⁻¹ r
        m_m = DROP**2 * (step[None, :, :] * px[:, :, 1:]).sum(1)  # m_τᵀ Σ⁻¹ m_τ
        out[:, lo : lo + t.size] = (m_y - m_m / 2.0).max(1).reshape(len(rows), t.size)
    return out


def healthy_stats(family: str, seed: int, variant: str) -> np.ndarray:
    days = (REFERENCE + LOOKBACK + HEALTHY_HOURS) // 24
    res = residuals(SyntheticSpec(days=days, seed=seed, **NOISE_FAMILIES[family]), variant)
    rows = [i for i, (p, _) in enumerate(res.keys) if p in BUSY]
    t_end = res.r.shape[1]
    return statistics(res, rows, range(t_end - HEALTHY_HOURS + 1, t_end + 1))


def drop_stats(family: str, seed: int, variant: str) -> np.ndarray:
    """The target series' statistic in the 72 hours after the product's drop ``seed``."""
    from alerts import drop_spec  # the benchmark's own drops (same seeds, same hours)

    spec, at = drop_spec(family, seed)
    res = residuals(spec, variant)
    s = res.keys.index(TARGET_KEY)
    return statistics(res, [s], range(at + 1, at + DETECT_WITHIN + 1))[0]


def false_per_month(stats: list[np.ndarray], h: float) -> float:
    n = 0
    for st in stats:
        firing = [set(np.nonzero(col > h)[0].tolist()) for col in st.T]
        n += len(opened(firing, RESOLVE_AFTER))
    series_months = sum(st.shape[0] * st.shape[1] for st in stats) / (30 * 24)
    return n / series_months * 200


def delays(drops: list[np.ndarray], h: float) -> list[int]:
    out = []
    for st in drops:
        hit = np.nonzero(st > h)[0]
        if hit.size:
            out.append(int(hit[0]) + 1)
    return out


def tail_threshold(cal: list[np.ndarray], grid: np.ndarray) -> tuple[float, float]:
    """The threshold at 1 false alert a month per 200 series from the tail: the rate of a
    likelihood-ratio statistic falls at least as ``e^-h`` (the true model's ratio: Wald's
    bound), so from the highest grid threshold ``h0`` still at >= 10 a month,
    ``h0 + ln(rate(h0))`` (conservative). Also the slope measured between ``h0`` and the
    last threshold with >= 2 a month."""
    rates = np.array([false_per_month(cal, h) for h in grid])
    dense = np.nonzero(rates >= 10.0)[0]
    if not dense.size:
        return float(grid[0]), float("nan")
    i0 = int(dense.max())
    sparse = np.nonzero(rates >= 2.0)[0]
    i1 = int(sparse.max())
    slope = (
        float(np.log(rates[i0] / rates[i1]) / (grid[i1] - grid[i0])) if i1 > i0 else float("nan")
    )
    return float(grid[i0] + np.log(rates[i0])), slope


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=7, help="healthy stores (x16 busy series)")
    parser.add_argument("--calibration-stores", type=int, default=14)
    parser.add_argument("--drops", type=int, default=20, help="the product's drop seeds 100+")
    parser.add_argument("--more-drops", type=int, default=100, help="seeds 100+, for the median")
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--variants", default="told,measured")
    args = parser.parse_args()
    grid = np.round(np.arange(3.0, 30.0, 0.25), 2)
    print(
        "ORACLE (knows the true CTR and the noise model; not the product): threshold on"
        f" calibration seeds, figures on test seeds; {WINDOW}-hour residual windows.\n"
        "   threshold: the lowest with <= 1 false alert a month per 200 calibration series"
        " (count), and from the tail's e^-h fall (tail; slope measured in brackets); at each:"
        f" test false alerts / month / 200, detection on the product's {args.drops} drops"
        f" and on {args.more_drops}"
    )
    print(
        f"   {'family':17} {'variant':9} {'count':>6} {'tail (slope)':>13} {'at':>5}"
        f" {'false/200':>8}"
        f" {'detected':>9} {'median':>7} {'p90':>5} {'of more':>8} {'median':>7}  delays"
    )
    t0 = time.perf_counter()
    for family in args.families.split(","):
        for variant in args.variants.split(","):
            cal = [healthy_stats(family, 1000 + i, variant) for i in range(args.calibration_stores)]
            ok = [h for h in grid if false_per_month(cal, h) <= 1.0]
            h_count = float(min(ok)) if ok else float(grid[-1])
            h, slope = tail_threshold(cal, grid)
            test = [healthy_stats(family, i, variant) for i in range(args.stores)]
            stats = [drop_stats(family, 100 + i, variant) for i in range(args.more_drops)]
            for name, at in (("count", h_count), ("tail", h)):
                ds = delays(stats[: args.drops], at)
                more = delays(stats, at)
                print(
                    f"   {family:17} {variant:9} {h_count:>6.2f} {f'{h:.2f} ({slope:.2f})':>13}"
                    f" {name:>5} {false_per_month(test, at):>8.2f} {len(ds):>4}/{args.drops:<4}"
                    f" {(f'{np.median(ds):.0f} h' if ds else '-'):>7}"
                    f" {(f'{np.percentile(ds, 90):.0f} h' if ds else '-'):>5}"
                    f" {len(more):>4}/{len(stats):<3}"
                    f" {(f'{np.median(more):.1f} h' if more else '-'):>7}  {sorted(ds)}",
                    flush=True,
                )
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
