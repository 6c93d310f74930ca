"""The level test's null tail on healthy calibration stores, against its own fitted noise.

A healthy calibration store (seeds 1000+, the alerts benchmark's ``healthy``:
30 days replayed hour by hour, the baseline refitted daily on the 28 days that
end 72 h before) is replayed twice at every hour, with the same baselines:

- on its real residuals (:func:`.detector.level_residuals`);
- on ``--draws`` sets of residuals drawn from the fitted noise model itself
  (:mod:`.level`: the hours' counting and white noise, the AR(1) part, a shift
  per UTC day and the window's offset, each from its own standard normal
  shocks, shared by the windows of one baseline as the real hours are), so
  the fitted model is the truth there by construction.

It prints, per base, the episode peaks of the level statistic where the loss
burns the budget (:mod:`.tail`, as the benchmark's tail fit keeps them) over 200
series-months, real and drawn, and their mean excess (the exponential scale
the tail fit reads), and the spread of the step z-scores ``uᵀΣ⁻¹r / √(uᵀΣ⁻¹u)``
at onsets 1-24 h back (1 where the fitted Σ is right along ``u``). Where the
real tail matches the drawn one, a scale above 1 is what a Gaussian likelihood
ratio of that information looks like (:func:`gaussian_llr_scale`), not a fit
that is too sure of itself.

``python benchmarks/alerts_level_tail.py [--family ar1] [--stores 14]
[--first-seed 1000] [--draws 4]`` (a diagnosis, not the product; calibration
seeds only).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
from scipy import special
from scipy.signal import lfilter

from shelfwise.monitoring.calibrate import REFIT_EVERY
from shelfwise.monitoring.detector import DetectorConfig, fit_baseline, level_residuals
from shelfwise.monitoring.level import LevelNoise, level_statistic, precision_times, tiled
from shelfwise.monitoring.series import FloatArray
from shelfwise.monitoring.synthetic import NOISE_FAMILIES, SyntheticSpec, generate
from shelfwise.monitoring.tail import episode_peaks

REFERENCE, LOOKBACK, HEALTHY_HOURS = 28 * 24, 72, 30 * 24
ONSETS = (1, 3, 6, 12, 24)
BASES = (3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0)
BURN_IN = 200  # hours of AR(1) before a baseline's first window


def gaussian_llr_scale(evidence: float, h: float) -> float:
    """The local exponential scale at ``h`` of the tail of ``a z - a²/2`` (z standard
    normal, ``a² / 2 = evidence``: the log-likelihood ratio of a known step under a
    noise model that is right): ``1 / (d/dh -log P(LLR > h))``. Above 1 where the
    evidence is large against ``h``; it falls as ``h`` grows (the tail is lighter than
    any exponential far out)."""
    a = float(np.sqrt(2.0 * evidence))
    x = h / a + a / 2.0
    hazard = float(np.exp(-0.5 * x * x - special.log_ndtr(-x)) / np.sqrt(2.0 * np.pi))
    return a / hazard


@dataclass(frozen=True)
class Shocks:
    """Standard normal shocks of one store's drawn residuals, (draws, S, hours) per
    hour and (draws, S, days) per UTC day (columns from the store's first day)."""

    white: FloatArray
    ar: FloatArray
    day: FloatArray

    @classmethod
    def draw(cls, rng: np.random.Generator, draws: int, series: int, hours: int) -> Shocks:
        return cls(
            white=rng.standard_normal((draws, series, hours)),
            ar=rng.standard_normal((draws, series, hours)),
            day=rng.standard_normal((draws, series, hours // 24 + 2)),
        )


def ar_path(rho: float, shocks: FloatArray) -> FloatArray:
    """A unit-variance AR(1) of ``rho`` along the last axis of ``shocks`` (started at 0:
    give it a burn-in)."""
    out: FloatArray = lfilter([np.sqrt(1.0 - rho**2)], [1.0, -rho], shocks, axis=-1)
    return out


def drawn(
    noise: LevelNoise,
    count_var: FloatArray,
    white: FloatArray,
    ar: FloatArray,
    day: FloatArray,
    offset: FloatArray,
) -> FloatArray:
    """Residuals (draws, S, N) of the fitted model from unit shocks: ``white`` and
    ``ar`` (draws, S, N; ``ar`` an AR(1) path of ``noise.rho``), ``day`` (draws, S, N:
    each hour's UTC day's shock) and ``offset`` (draws, S); ``count_var`` (S, N)."""
    day_var = np.zeros_like(noise.white) if noise.day_var is None else noise.day_var
    out: FloatArray = (
        np.sqrt(count_var + noise.white[:, None])[None] * white
        + np.sqrt(noise.ar_var)[None, :, None] * ar
        + np.sqrt(day_var)[None, :, None] * day
        + np.sqrt(noise.offset_var)[None, :, None] * offset[:, :, None]
    )
    return out


def window_draws(
    noise: LevelNoise,
    count_var: FloatArray,
    shocks: Shocks,
    path: FloatArray,
    path_start: int,
    t: int,
    day: np.ndarray,
    offset: FloatArray,
) -> FloatArray:
    """:func:`drawn` residuals of the window of hours ``[t - N, t)`` of a store's shocks
    (``count_var`` (S, N); ``path`` the AR(1) path from hour ``path_start``; ``day`` (N,)
    each hour's UTC day from the store's first)."""
    n = count_var.shape[1]
    return drawn(
        noise,
        count_var,
        shocks.white[:, :, t - n : t],
        path[:, :, t - n - path_start : t - path_start],
        shocks.day[:, :, day],
        offset,
    )


def step_z(noise: LevelNoise, count_var: FloatArray, r: FloatArray, day: np.ndarray) -> FloatArray:
    """(S, len(ONSETS)): the loss z-score ``-uᵀΣ⁻¹r / √(uᵀΣ⁻¹u)`` of a step from each
    onset of ONSETS hours back; standard normal where Σ is right."""
    s, n = r.shape
    steps = np.stack([(np.arange(n) >= n - k).astype(float) for k in ONSETS], axis=1)
    x = np.concatenate([r[:, :, None], np.broadcast_to(steps, (s, n, len(ONSETS)))], axis=2)
    px = precision_times(noise, count_var, x, day)
    m_r = (steps[None] * px[:, :, :1]).sum(1)
    info = (steps[None] * px[:, :, 1:]).sum(1)
    z: FloatArray = -m_r / np.sqrt(info)
    return z


def alarmable(
    r: FloatArray,
    count_var: FloatArray,
    noise: LevelNoise,
    mu: FloatArray,
    value: FloatArray,
    day: np.ndarray,
    cfg: DetectorConfig,
) -> FloatArray:
    """The level statistic where the loss since its onset burns the ticket rate (as
    ``LevelTest.alarmable``), else 0; ``r`` (S, N)."""
    st = level_statistic(r, count_var, noise, cfg.sequential_drop, cfg.level_changes_hours, day)
    n = r.shape[1]
    after = np.arange(n)[None, :] >= st.start[:, None]
    money = (-r * mu * value * after).sum(1)
    burns = (money > 0) & (
        money / np.maximum(n - st.start, 1) >= cfg.ticket_burn * cfg.budget_per_hour
    )
    out: FloatArray = np.where(burns, st.statistic, 0.0)
    return out


def replay(family: str, seed: int, draws: int, cfg: DetectorConfig) -> tuple[FloatArray, ...]:
    """One healthy store: the alarmable statistic (hours, S) on the real residuals, the
    same (draws, hours, S) on drawn ones, and the real step z-scores (hours, S, onsets)."""
    days = (REFERENCE + LOOKBACK + HEALTHY_HOURS) // 24
    series = generate(SyntheticSpec(days=days, seed=seed, **NOISE_FAMILIES[family])).series
    s, t_all = len(series.keys), series.hours
    rng = np.random.default_rng([seed, 78])
    shocks = Shocks.draw(rng, draws, s, t_all)
    first_day = int(series.epoch_hours[0] // 24)
    w = cfg.level_window_hours
    real, sim, zs = [], [], []
    noise: LevelNoise | None = None
    for t in range(t_all - HEALTHY_HOURS + 1, t_all + 1):
        if noise is None or (t - (t_all - HEALTHY_HOURS + 1)) % REFIT_EVERY == 0:
            hi = t - LOOKBACK
            base = fit_baseline(series.window(hi - REFERENCE, hi), lookback_hours=LOOKBACK)
            assert base.level is not None
            noise, many = base.level, tiled(base.level, draws)
            start = t - w - BURN_IN
            path = ar_path(noise.rho, shocks.ar[:, :, start:])
            offset = rng.standard_normal((draws, s))
        cur = series.window(t - w, t)
        r, count_var, mu, value = level_residuals(base, cur)
        day = cur.epoch_hours // 24
        real.append(alarmable(r, count_var, noise, mu, value, day, cfg))
        zs.append(step_z(noise, count_var, r, day))
        rs = window_draws(noise, count_var, shocks, path, start, t, day - first_day, offset)
        flat = alarmable(
            rs.reshape(draws * s, w),
            np.tile(count_var, (draws, 1)),
            many,
            np.tile(mu, (draws, 1)),
            np.tile(value, (draws, 1)),
            day,
            cfg,
        )
        sim.append(flat.reshape(draws, s))
    return np.array(real), np.stack(sim, axis=1), np.array(zs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="ar1")
    parser.add_argument("--stores", type=int, default=14)
    parser.add_argument("--first-seed", type=int, default=1000)
    parser.add_argument("--draws", type=int, default=4)
    args = parser.parse_args()
    if args.first_seed < 1000:
        raise SystemExit("calibration seeds only (1000+)")
    cfg = DetectorConfig()
    t0 = time.perf_counter()
    real_peaks, sim_peaks, zs = [], [], []
    for seed in range(args.first_seed, args.first_seed + args.stores):
        real, sim, z = replay(args.family, seed, args.draws, cfg)
        real_peaks.append(episode_peaks(real, BASES[0], cfg.resolve_after_hours))
        sim_peaks.extend(episode_peaks(x, BASES[0], cfg.resolve_after_hours) for x in sim)
        zs.append(z.reshape(-1, len(ONSETS)))
        print(f"   store {seed} ({time.perf_counter() - t0:.0f} s)", flush=True)
    series_months = args.stores * 32 * HEALTHY_HOURS / (30 * 24) / 200
    rp, sp = np.concatenate(real_peaks), np.concatenate(sim_peaks)
    print(
        f"{args.family}, healthy stores {args.first_seed}-{args.first_seed + args.stores - 1}:"
        f" episode peaks of the alarmable level statistic per 200 series-months (count), real"
        f" and drawn from the fitted noise ({args.draws} draws a store), and their mean excess"
    )
    for b in BASES:
        r, d = rp[rp > b], sp[sp > b]
        print(
            f"   over {b:4.1f}: real {r.size / series_months:6.2f} ({r.size:4})"
            f"  drawn {d.size / series_months / args.draws:6.2f} ({d.size:4})"
            f"  excess real {np.mean(r - b) if r.size else float('nan'):4.2f}"
            f" drawn {np.mean(d - b) if d.size else float('nan'):4.2f}"
        )
    z = np.concatenate(zs)
    print(
        "   step z-scores' sd at onsets "
        + ", ".join(f"{k} h {sd:.3f}" for k, sd in zip(ONSETS, z.std(0), strict=True))
    )
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
