"""Where a 2% drop's evidence comes from, hour by hour after its 20:00 onset.

On calibration drops (seeds 1100+, the alerts benchmark's ``drop_spec``: a 2% CTR
loss on ``home_top_picks`` x ``bedding`` from a 20:00 peak) each drop is replayed
as the evaluator sees it (``alerts.incident``) and, at every hour ``k`` after the
onset, with the baseline the replay used there:

- the level test's statistic on the drop's series, and which test fired first;
- the evidence the level test expects at the true onset, ``δ² uᵀΣ⁻¹u / 2``
  (``u`` the step from the onset, ``Σ`` its fitted noise, :mod:`.level`): the mean
  of its log-likelihood ratio under the drop. A detector whose statistic is this
  ratio fires, in the median, about where it passes the threshold;
- the same under the family's *told* noise (the series' own jitter, day shift and
  AR(1) as ``NOISE_FAMILIES`` generates them; the offset as fitted) and how much of
  it the fitted statistic keeps when the told noise is the truth;
- the same without the AR(1) part (what the series' own wander costs);
- how much of it other linear statistics of the same residuals keep (efficiency
  ``(wᵀu)² / (wᵀΣw · uᵀΣ⁻¹u)``, at most 1 by Cauchy-Schwarz: 1 is the level
  test's own weighting): the clicks short since the onset (a window on the
  traffic's clock), and the same less the clicks' level before it.

``python benchmarks/alerts_evidence.py [--family ar1] [--drops 30]``
(not the product: a diagnosis of its level test; calibration seeds only).
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np

from shelfwise.monitoring.calibrate import REFIT_EVERY
from shelfwise.monitoring.detector import (
    Baseline,
    DetectorConfig,
    fit_baseline,
    level_residuals,
)
from shelfwise.monitoring.level import LevelNoise, covariance
from shelfwise.monitoring.series import FloatArray
from shelfwise.monitoring.synthetic import NOISE_FAMILIES, SyntheticSpec

HOURS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 18, 20, 24)


def evidence(cov: FloatArray, u: FloatArray, drop: float) -> float:
    """The mean log-likelihood ratio of a relative loss ``drop`` along ``u`` under
    Gaussian noise ``cov``: ``drop² uᵀΣ⁻¹u / 2``."""
    return float(drop**2 * (u @ np.linalg.solve(cov, u)) / 2.0)


def efficiency(w: FloatArray, cov: FloatArray, u: FloatArray) -> float:
    """The share of the evidence along ``u`` that the linear statistic ``wᵀr`` keeps
    under noise ``cov``: ``(wᵀu)² / (wᵀΣw · uᵀΣ⁻¹u)`` (1 for ``w ∝ Σ⁻¹u``)."""
    return float((w @ u) ** 2 / (w @ cov @ w) / (u @ np.linalg.solve(cov, u)))


def told_noise(family: str, fitted: LevelNoise) -> LevelNoise:
    """The series' own noise of ``family`` as the synthetic stores generate it (the
    hourly jitter, its own share of the day shift and the AR(1) part), with the fitted
    offset (the baseline's error is real)."""
    spec = SyntheticSpec(**NOISE_FAMILIES[family])
    share = spec.ctr_local_share
    s = fitted.white.size
    return LevelNoise(
        white=np.full(s, spec.ctr_jitter**2),
        ar_var=np.full(s, share * spec.ctr_ar_sd**2),
        rho=spec.ctr_ar_rho if spec.ctr_ar_sd else fitted.rho,
        offset_var=fitted.offset_var,
        day_var=np.full(s, share * spec.ctr_day_sd**2),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="ar1")
    parser.add_argument("--drops", type=int, default=30)
    args = parser.parse_args()
    # The alerts benchmark's drops and replay (this folder is on sys.path when run as a
    # script; imported here so the functions above import without it).
    from alerts import REFERENCE, TARGET_KEY, delay, incident

    cfg = DetectorConfig()
    rows: dict[int, list[tuple[float, ...]]] = {k: [] for k in HOURS}
    first: dict[str, int] = {"level": 0, "other tests": 0, "none": 0}
    delays: list[int] = []
    for seed in range(1100, 1100 + args.drops):
        drop = incident(args.family, seed, cfg)
        series = drop.store.series
        s = series.keys.index(TARGET_KEY)
        found = delay(drop, cfg)
        level_at = [float(lv.statistic[s]) for lv in drop.rec.level or []]
        onset_at = [
            lv.start is not None and lv.start[s] == drop.start_hour for lv in drop.rec.level or []
        ]
        if found is None:
            first["none"] += 1
        else:
            delays.append(found)
            first["level" if level_at[found - 1] > cfg.level_threshold else "other tests"] += 1
        bases: dict[int, Baseline] = {}  # refit hour -> the baseline fitted there
        for k in HOURS:
            t = drop.start_hour + k
            # The baseline the replay used at t (refitted every REFIT_EVERY hours).
            fitted_at = drop.start_hour + 1 + (k - 1) // REFIT_EVERY * REFIT_EVERY
            hi = fitted_at - cfg.onset_lookback_hours
            if hi not in bases:
                bases[hi] = fit_baseline(series.window(hi - REFERENCE, hi), lookback_hours=72)
            base = bases[hi]
            assert base.level is not None
            lo = t - cfg.level_window_hours
            cur = series.window(lo, t)
            _, count_var, mu, _ = level_residuals(base, cur)
            day = cur.epoch_hours // 24
            u = (np.arange(cur.hours) >= drop.start_hour - lo).astype(float)
            fitted = covariance(base.level, count_var, s, day)
            told = covariance(told_noise(args.family, base.level), count_var, s, day)
            no_ar = replace(base.level, ar_var=np.zeros_like(base.level.ar_var))
            level_w = np.linalg.solve(fitted, u)
            clicks = mu[s] * u
            before = mu[s] * (1.0 - u)
            since = clicks / clicks.sum() - before / before.sum()
            rows[k].append(
                (
                    level_at[k - 1],
                    float(found is not None and found <= k),
                    float(onset_at[k - 1]),
                    evidence(fitted, u, cfg.sequential_drop),
                    evidence(told, u, cfg.sequential_drop),
                    efficiency(level_w, told, u),
                    evidence(covariance(no_ar, count_var, s, day), u, cfg.sequential_drop),
                    efficiency(clicks, fitted, u),
                    efficiency(since, fitted, u),
                )
            )
    print(
        f"{args.family}, {args.drops} calibration drops (1100+): found {len(delays)}, median"
        f" {np.median(delays):.1f} h; first to fire: "
        + ", ".join(f"{name} {n}" for name, n in first.items())
    )
    print(
        "hour (UTC)  level statistic (median)  found by then  its onset the true one"
        "  evidence: fitted  told  fitted's share under told  without AR(1)  share kept:"
        " clicks since onset  less before"
    )
    for k in HOURS:
        m = np.array(rows[k])
        print(
            f"{k:3d} ({(20 + k) % 24:02d}:00) {np.median(m[:, 0]):10.1f} {m[:, 1].mean():13.0%}"
            f" {m[:, 2].mean():12.0%} {m[:, 3].mean():16.1f} {m[:, 4].mean():5.1f}"
            f" {m[:, 5].mean():10.2f} {m[:, 6].mean():14.1f} {m[:, 7].mean():14.2f}"
            f" {m[:, 8].mean():12.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
