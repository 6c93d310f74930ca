"""A level threshold per store from draws of its fitted noise, against its real false alerts.

The level test alarms above one global ``level_threshold`` (11.0). The lead
tried here: set it per store from a parametric bootstrap of the level
statistic under the store's own fitted noise model (``monitoring.level``),
times an allowance for the real tail's excess over the model's at the top
(measured on calibration blocks), so that where a store is well modelled the
threshold, and `ar1`'s detection delay, can fall. (It did not hold: the real
tail's excess over the model grows with the threshold; benchmarks/README.md.)

Per healthy store (the alerts benchmark's ``healthy``: 30 days replayed hour
by hour, the baseline refitted daily on the 28 days that end 72 h before):

- **real**: the alerts every test opens together (one per episode) at each
  level threshold of GRID, and the episode peaks of the level statistic
  where the loss burns the budget, per series (with the hours the other tests
  fire, and without them as the benchmark's tail keeps them);
- **drawn**: the same statistic on ``--draws`` months of residuals drawn from
  the store's fitted noise model (``alerts_level_tail.drawn``: the fit is the
  truth there), for the home page's series only (on 63 healthy ``ar1``
  stores every real level peak over 8 but one is on ``home_top_picks``).

From them: the real and drawn episodes per 200 series-months over each base
(the allowance is their ratio), each store's bootstrap threshold (the lowest
of GRID at which ``allowance x drawn rate`` is within the level test's share
of 1 false alert a month per 200 series), and the false alerts the real
replay opens at those thresholds.

``python benchmarks/alerts_level_bootstrap.py --family ar1 --real 1000-1013,0-6
--drawn 1000-1013 --draws 32 --cache DIR`` (stores already in ``DIR`` are read
back, not replayed). Calibration and read blocks only: seeds of 8000 and up
are refused (the fresh block, read once to confirm a change).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from shelfwise.monitoring.calibrate import REFIT_EVERY, opened
from shelfwise.monitoring.detector import DetectorConfig, fit_baseline, level_residuals
from shelfwise.monitoring.level import LevelNoise
from shelfwise.monitoring.synthetic import NOISE_FAMILIES, SyntheticSpec, generate
from shelfwise.monitoring.tail import episode_peaks

GRID = tuple(float(x) for x in np.round(np.arange(8.0, 12.001, 0.25), 2))
DROP_GRID = tuple(float(x) for x in np.round(np.arange(9.0, 11.001, 0.25), 2))
TARGET_DELAY = 6  # hours: the median delay
BASES = (4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 9.5, 10.0, 10.5, 11.0, 12.0)
PEAK_BASE = 4.0
HOME = "home_top_picks"
FRESH = 8000  # the first seed of the fresh block


def seeds(spec: str) -> list[int]:
    """``"1000-1013,0-6"`` -> 1000..1013, 0..6."""
    out: list[int] = []
    for part in filter(None, spec.split(",")):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def real_store(family: str, seed: int, cfg: DetectorConfig) -> dict[str, Any]:
    """A healthy store's alerts at each level threshold of GRID (and with the level test
    off, ``"0.0"``) and its level statistic's episode peaks over PEAK_BASE per series."""
    # The alerts benchmark's replay (this folder is on sys.path when run as a script;
    # imported here so this module imports without it).
    from alerts import healthy

    rec, _ = healthy(family, seed, cfg)
    counted = {
        str(h): [
            [int(t), int(k)]
            for t, k in opened(rec.firing(replace(cfg, level_threshold=h)), cfg.resolve_after_hours)
        ]
        for h in (*GRID, 0.0)
    }
    assert rec.level is not None
    stat = np.stack([lv.alarmable(cfg) for lv in rec.level])
    without = stat.copy()
    for i, now in enumerate(rec.firing(replace(cfg, level_threshold=0.0))):
        without[i, sorted(now)] = 0.0
    peaks = {
        name: [
            [s, float(p)]
            for s in range(x.shape[1])
            for p in episode_peaks(x[:, s : s + 1], PEAK_BASE, cfg.resolve_after_hours)
        ]
        for name, x in (("all", stat), ("excl", without))
    }
    keys = [list(k) for k in rec.keys]
    return {"family": family, "seed": seed, "keys": keys, "hours": rec.hours} | {
        "counted": counted,
        "peaks": peaks,
    }


def _series(noise: LevelNoise, idx: np.ndarray, copies: int) -> LevelNoise:
    """``noise`` of the series ``idx``, repeated ``copies`` times (draw-major)."""

    def take(a: np.ndarray) -> np.ndarray:
        return np.tile(a[idx], copies)

    return LevelNoise(
        white=take(noise.white),
        ar_var=take(noise.ar_var),
        rho=noise.rho,
        offset_var=take(noise.offset_var),
        day_var=None if noise.day_var is None else take(noise.day_var),
    )


def drawn_store(family: str, seed: int, draws: int, cfg: DetectorConfig) -> dict[str, Any]:
    """The level statistic's episode peaks over PEAK_BASE on ``draws`` months of residuals
    drawn from the store's fitted noise (refitted daily as the replay does), for the home
    page's series: ``[series, draw, peak]``."""
    from alerts_level_tail import (
        BURN_IN,
        HEALTHY_HOURS,
        LOOKBACK,
        REFERENCE,
        Shocks,
        alarmable,
        ar_path,
        window_draws,
    )

    days = (REFERENCE + LOOKBACK + HEALTHY_HOURS) // 24
    series = generate(SyntheticSpec(days=days, seed=seed, **NOISE_FAMILIES[family])).series
    idx = np.array([i for i, k in enumerate(series.keys) if k[0] == HOME])
    s, t_all, w = len(idx), series.hours, cfg.level_window_hours
    rng = np.random.default_rng([seed, 79])
    shocks = Shocks.draw(rng, draws, s, t_all)
    first_day = int(series.epoch_hours[0] // 24)
    first = t_all - HEALTHY_HOURS + 1
    rhos: list[float] = []
    stat = []
    for t in range(first, t_all + 1):
        if (t - first) % REFIT_EVERY == 0:
            hi = t - LOOKBACK
            base = fit_baseline(series.window(hi - REFERENCE, hi), lookback_hours=LOOKBACK)
            assert base.level is not None
            noise, many = _series(base.level, idx, 1), _series(base.level, idx, draws)
            rhos.append(noise.rho)
            start = t - w - BURN_IN
            path = ar_path(noise.rho, shocks.ar[:, :, start:])
            offset = rng.standard_normal((draws, s))
        cur = series.window(t - w, t)
        _, count_var, mu, value = level_residuals(base, cur)
        count_var, mu, value = count_var[idx], mu[idx], value[idx]
        day = cur.epoch_hours // 24
        r = window_draws(noise, count_var, shocks, path, start, t, day - first_day, offset)
        tiled = [np.tile(a, (draws, 1)) for a in (count_var, mu, value)]
        stat.append(
            alarmable(r.reshape(draws * s, w), tiled[0], many, tiled[1], tiled[2], day, cfg)
        )
    x = np.array(stat)
    peaks = [
        [int(idx[j % s]), j // s, float(p)]
        for j in range(x.shape[1])
        for p in episode_peaks(x[:, j : j + 1], PEAK_BASE, cfg.resolve_after_hours)
    ]
    return {"family": family, "seed": seed, "draws": draws, "series": idx.tolist()} | {
        "hours": x.shape[0],
        "rhos": rhos,
        "peaks": peaks,
    }


def drop_delays(family: str, seed: int, cfg: DetectorConfig) -> dict[str, int | None]:
    """Hours to the alert of the alerts benchmark's calibration drop ``seed`` (a 2% loss of
    CTR on the home page's top category from a 20:00 peak) at each threshold of DROP_GRID."""
    from alerts import delay, incident

    drop = incident(family, seed, cfg)
    return {str(h): delay(drop, replace(cfg, level_threshold=h)) for h in DROP_GRID}


def refit_at(family: str, seed: int, hour: int) -> LevelNoise:
    """The level noise of the daily refit in force at replayed ``hour`` (0-based) of healthy
    store ``seed``, as the alerts benchmark's replay fits it."""
    from alerts import HEALTHY_HOURS, LOOKBACK, REFERENCE

    cfg = DetectorConfig()
    days = (REFERENCE + LOOKBACK + HEALTHY_HOURS) // 24
    series = generate(SyntheticSpec(days=days, seed=seed, **NOISE_FAMILIES[family])).series
    t = series.hours - HEALTHY_HOURS + 1 + (hour // REFIT_EVERY) * REFIT_EVERY
    hi = t - cfg.onset_lookback_hours
    windows = (cfg.fast_window_hours, cfg.slow_window_hours)
    base = fit_baseline(series.window(hi - REFERENCE, hi), windows, cfg.onset_lookback_hours)
    assert base.level is not None
    return base.level


def episode_fits(family: str, real: list[dict[str, Any]], reference: list[int], at: str) -> None:
    """The refit behind every real alert at level threshold ``at`` that the other tests did
    not raise (the series' fitted AR(1) and white noise), against every third refit of the
    home series of the ``reference`` stores."""
    print(f"the refits behind the level test's alerts at {at} (variances in 1e-5):")
    for d in real:
        for hour, k in (a for a in d["counted"][at] if a not in d["counted"]["0.0"]):
            lv = refit_at(family, d["seed"], hour)
            print(
                f"   {d['seed']:5} {d['keys'][k][1]:10} hour {hour:3}: rho {lv.rho:.2f}"
                f" AR {lv.ar_var[k] * 1e5:.2f} white {lv.white[k] * 1e5:.2f}"
            )
    ar, rho = [], []
    for seed in reference:
        for hour in range(0, 30 * 24, 3 * REFIT_EVERY):
            lv = refit_at(family, seed, hour)
            ar.extend(lv.ar_var[:8] * 1e5)
            rho.extend([lv.rho] * 8)
    q = (10, 25, 50, 75, 90)
    print(
        f"   every third refit of stores {reference}, home series, at {q}%: AR"
        f" {np.round(np.percentile(ar, q), 2)}, rho {np.percentile(rho, q)}"
    )


def cached(path: Path, make: Any) -> dict[str, Any]:
    if path.exists():
        out: dict[str, Any] = json.loads(path.read_text())
        return out
    out = make()
    path.write_text(json.dumps(out))
    return out


def poisson_upper(n: int) -> float:
    """One-sided 95% upper bound of a Poisson mean with ``n`` events."""
    return float(stats.chi2.ppf(0.95, 2 * (n + 1)) / 2)


def bootstrap_threshold(
    drawn_peaks: np.ndarray, store_months: float, allowance: float, budget: float
) -> float:
    """The lowest of GRID at which ``allowance`` times the drawn episodes over it, per 200
    series-months of 32 series (``store_months`` of draws), is within ``budget``;
    inf if none is."""
    units = store_months * 32 / 200
    for h in GRID:
        if allowance * float((drawn_peaks > h).sum()) / units <= budget:
            return h
    return float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", default="ar1")
    parser.add_argument(
        "--real", default="1000-1013", help="healthy seeds replayed, e.g. 1000-1013,0-6"
    )
    parser.add_argument("--drawn", default="1000-1013", help="healthy seeds drawn from their fit")
    parser.add_argument("--draws", type=int, default=32)
    parser.add_argument("--drops", type=int, default=0, help="calibration drops 1100.. to time")
    parser.add_argument(
        "--episode-fits", default="", help="reference stores for the refits behind alerts at 10"
    )
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument(
        "--allowance-bases", default="7,8,9,10", help="where real / drawn is read, comma-separated"
    )
    args = parser.parse_args()
    real_seeds, drawn_seeds = seeds(args.real), seeds(args.drawn)
    if max(real_seeds + drawn_seeds) >= FRESH:
        raise SystemExit(f"seeds {FRESH}+ are the fresh block: read once, to confirm a change")
    cfg = DetectorConfig()
    t0 = time.perf_counter()
    (args.cache / "real").mkdir(parents=True, exist_ok=True)
    (args.cache / "drawn").mkdir(parents=True, exist_ok=True)
    real = [
        cached(
            args.cache / "real" / f"{args.family}_{s}.json",
            lambda s=s: real_store(args.family, s, cfg),
        )
        for s in real_seeds
    ]
    drawn = [
        cached(
            args.cache / "drawn" / f"{args.family}_{s}_{args.draws}.json",
            lambda s=s: drawn_store(args.family, s, args.draws, cfg),
        )
        for s in drawn_seeds
    ]
    print(
        f"{args.family}: {len(real)} real stores, {len(drawn)} drawn x {args.draws} ({time.perf_counter() - t0:.0f} s)"
    )
    units = len(real) * 32 / 200

    print("alerts opened by every test together (per 200 series-months [95% upper], count):")
    for key in ("0.0", *map(str, GRID)):
        n = sum(len(d["counted"][key]) for d in real)
        print(
            f"   level {'off' if key == '0.0' else key:>5}: {n / units:5.2f} [{poisson_upper(n) / units:5.2f}] ({n})"
        )

    home = np.array([p for d in real for s, p in d["peaks"]["all"] if d["keys"][s][0] == HOME])
    rest = np.array([p for d in real for s, p in d["peaks"]["all"] if d["keys"][s][0] != HOME])
    drawn_all = np.array([p[2] for d in drawn for p in d["peaks"]])
    drawn_units = sum(d["draws"] for d in drawn) * 32 / 200
    print(
        "level episodes per 200 series-months (count): real home series, real others, drawn home series; real / drawn"
    )
    for b in BASES:
        r, o, m = int((home > b).sum()), int((rest > b).sum()), int((drawn_all > b).sum())
        ratio = (r / units) / (m / drawn_units) if m else float("inf")
        print(
            f"   over {b:4.1f}: {r / units:6.2f} ({r:4})  {o / units:5.2f} ({o:3})"
            f"  {m / drawn_units:7.3f} ({m:5})  {ratio:6.2f}"
        )
    others = sum(len(d["counted"]["0.0"]) for d in real) / units
    budget = 1.0 - others
    print(f"the other tests' alerts {others:.2f}: the level test's budget {budget:.2f}")
    by_seed = {d["seed"]: d for d in real}
    for base in (float(x) for x in args.allowance_bases.split(",")):
        r, m = int((home > base).sum()), int((drawn_all > base).sum())
        if m == 0:
            print(f"   allowance over {base:g}: no drawn episode over it")
            continue
        point = (r / units) / (m / drawn_units)
        upper = (poisson_upper(r) / units) / (m / drawn_units)
        for name, a in (("", point), (" (95% upper)", upper)):
            hs, opened_n, months = [], 0, 0
            for d in drawn:
                peaks = np.array([p[2] for p in d["peaks"]])
                h = bootstrap_threshold(peaks, d["draws"], a, budget)
                hs.append(h)
                if d["seed"] in by_seed:  # no threshold on the grid: the level test off
                    key = str(h) if np.isfinite(h) else "0.0"
                    opened_n += len(by_seed[d["seed"]]["counted"][key])
                    months += 1
            at = months * 32 / 200
            print(
                f"   allowance over {base:g}{name} {a:.2f}: per-store thresholds median"
                f" {np.median(hs):g} ({min(hs):g}-{max(hs):g}); the real alerts at them"
                f" {opened_n / at:.2f} a month per 200 series [{poisson_upper(opened_n) / at:.2f}]"
                f" ({opened_n} in {months} stores)"
            )
    print(
        "per drawn store: the refits' rho (median, lowest), drawn episodes over 8 / 9 / 10 per 200"
    )
    print("series-months, the real level peaks over 8")
    for d in drawn:
        peaks = np.array([p[2] for p in d["peaks"]])
        at = d["draws"] * 32 / 200
        real_top = (
            sorted(
                (round(p, 1) for _, p in by_seed[d["seed"]]["peaks"]["all"] if p > 8.0),
                reverse=True,
            )
            if d["seed"] in by_seed
            else "not replayed"
        )
        print(
            f"   {d['seed']:5}: rho {np.median(d['rhos']):.2f} {min(d['rhos']):.2f}  "
            + " ".join(f"{(peaks > b).sum() / at:5.2f}" for b in (8.0, 9.0, 10.0))
            + f"  real {real_top}"
        )
    if args.drops:
        delays = cached(
            args.cache / f"drops_{args.family}_1100.json",
            lambda: {
                str(s): drop_delays(args.family, s, cfg) for s in range(1100, 1100 + args.drops)
            },
        )
        print(f"calibration drops 1100-{1099 + args.drops} at global level thresholds:")
        for h in map(str, DROP_GRID):
            found = [v[h] for v in delays.values() if v[h] is not None]
            soon = sum(x <= TARGET_DELAY for x in found)
            print(
                f"   level {h:>5}: found {len(found)}/{len(delays)}, median {np.median(found):g} h,"
                f" within {TARGET_DELAY} h {soon}, p90 {np.percentile(found, 90):.0f} h"
            )
    if args.episode_fits:
        episode_fits(args.family, real, seeds(args.episode_fits), "10.0")
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
