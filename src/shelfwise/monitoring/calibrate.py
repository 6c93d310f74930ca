"""How often the alerts would have fired: replay past weeks at the configured thresholds.

``calibrate`` replays every hour of the last ``weeks`` weeks as the evaluator
would have seen it (the baseline refitted daily on the reference that ends
one onset look-back before, as ``evaluate_alerts`` fits it), and reports:

- the alerts that would have opened (one per series until it resolves), scaled
  to a 30-day month, with a 95% upper bound (Poisson). If those weeks were
  healthy, this is the false-alert rate a merchant should expect; an alert in
  the replay is either a real incident or a false alarm, and the list says
  which series to look at;
- the spread of the standardised shortfalls ``z`` of every window the test
  saw, per window length and stage. A detector whose null distribution fits
  the shop's traffic has a spread near 1; above 1 it alerts more often than
  its false-discovery rate says, below 1 it is slower than it could be.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from shelfwise.monitoring.detector import STAGES, DetectorConfig, replay, stage_deficits
from shelfwise.monitoring.series import HourlySeries

HOURS_PER_MONTH = 30 * 24
REFIT_EVERY = 24
MIN_EXPECTED = 30.0  # windows expecting fewer counts are tested by their Poisson tail


@dataclass(frozen=True)
class Spread:
    window_hours: int
    stage: str
    windows: int
    z_sd: float
    z_mean: float


@dataclass(frozen=True)
class Calibration:
    hours: int
    series: int
    opened: int
    per_month: float
    per_month_upper: float
    alerts_by_series: dict[tuple[str, str], int]
    spreads: list[Spread]
    first_alert_hours: dict[tuple[str, str], int]  # replay column of each series' first alert

    @property
    def weeks(self) -> float:
        return self.hours / (7 * 24)


def history_hours(weeks: int, reference_days: int, cfg: DetectorConfig) -> int:
    """Hours of series that a replay of ``weeks`` needs."""
    return weeks * 7 * 24 + reference_days * 24 + cfg.onset_lookback_hours


def calibrate(
    series: HourlySeries,
    reference_hours: int,
    cfg: DetectorConfig,
    hours: int,
) -> Calibration:
    """Replay the last ``hours`` of ``series`` (which must hold the reference and
    look-back before them) and count the alerts that would have opened."""
    start = series.hours - hours
    if start < reference_hours + cfg.onset_lookback_hours:
        raise ValueError("the series is too short for this replay")
    is_open: set[int] = set()
    opened: dict[tuple[str, str], int] = {}
    first: dict[tuple[str, str], int] = {}
    zs: dict[tuple[int, int], list[np.ndarray]] = {}
    windows = sorted({cfg.fast_window_hours, cfg.slow_window_hours})
    for t, base, findings in replay(
        series, reference_hours, cfg, start, series.hours, refit_every=REFIT_EVERY
    ):
        now = {f.series for f in findings}
        for s in now - is_open:
            key = series.keys[s]
            opened[key] = opened.get(key, 0) + 1
            first.setdefault(key, t - start)
        is_open = now
        for w in windows:
            d = stage_deficits(base, series.window(t - w, t), w)
            for k in range(len(STAGES)):
                ok = d.expected[:, k] >= MIN_EXPECTED
                zs.setdefault((w, k), []).append(d.z[ok, k])
    spreads = []
    for (w, k), parts in sorted(zs.items()):
        z = np.concatenate(parts)
        spreads.append(
            Spread(
                window_hours=w,
                stage=STAGES[k],
                windows=int(z.size),
                z_sd=float(z.std()) if z.size > 1 else float("nan"),
                z_mean=float(z.mean()) if z.size else float("nan"),
            )
        )
    n = sum(opened.values())
    months = hours / HOURS_PER_MONTH
    upper = float(stats.chi2.ppf(0.95, 2 * (n + 1)) / 2)
    return Calibration(
        hours=hours,
        series=len(series.keys),
        opened=n,
        per_month=n / months,
        per_month_upper=upper / months,
        alerts_by_series=opened,
        spreads=spreads,
        first_alert_hours=first,
    )
