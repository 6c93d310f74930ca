"""The money at risk an alert states: since when, and how much per hour since then.

Two estimates can apply. The onset CUSUM's (:func:`.detector.onset`, step 8 of
docs/monitoring.md) sums the money deficit against the baseline since the
change point of the money series, every stage found significant. The level
test's (:mod:`.level`) fits the click-through loss since its own onset by
generalised least squares under the series' learned correlated noise,
``δ̂ = -uᵀΣ⁻¹r / uᵀΣ⁻¹u``, which compares the hours since the onset with the
series' own hours before it; the money is ``δ̂`` times the expected clicks'
value since then. ``DetectorConfig.money_estimate`` says which an alert states
where the level test passed its threshold and click-through is the only
broken stage (the level test sees no other); elsewhere the onset CUSUM's.
"""

from __future__ import annotations

from shelfwise.monitoring.detector import (
    Baseline,
    DetectorConfig,
    Finding,
    Onset,
    level_residuals,
    onset,
)
from shelfwise.monitoring.level import covariance
from shelfwise.monitoring.series import HourlySeries


def onset_variance(
    base: Baseline, series: HourlySeries, s: int, end: int, cfg: DetectorConfig, start: int
) -> float:
    """Variance of the onset CUSUM's money per hour since column ``start`` under the
    level test's noise model (click-through only): ``aᵀΣa / hours²`` with ``a`` each
    hour's expected clicks' value from ``start`` on."""
    if base.level is None:
        return float("inf")
    lo = max(end - cfg.level_window_hours, 0)
    cur = series.window(lo, end)
    _, count_var, mu, value = level_residuals(base, cur)
    k = min(max(start - lo, 0), cur.hours - 1)
    a = mu[s, k:] * value[s, k:]
    cov = covariance(base.level, count_var, s, cur.epoch_hours // 24)[k:, k:]
    return float(a @ cov @ a) / a.size**2


def money_at_risk(
    base: Baseline, series: HourlySeries, f: Finding, end: int, cfg: DetectorConfig
) -> Onset:
    """The onset and money per hour that the alert of finding ``f`` states."""
    cusum = onset(base, series, f.series, end, cfg, f.stages)
    level = f.level
    if level is None or cfg.money_estimate == "onset" or f.stages != ("click_through",):
        return cusum
    if cfg.money_estimate == "level" or level.variance is None:
        return level
    # Inverse-variance weights; the onset and the revenue figures are the weightier's.
    w_level = 1.0 / max(level.variance, 1e-12)
    w_cusum = 1.0 / max(onset_variance(base, series, f.series, end, cfg, cusum.start), 1e-12)
    risk = (w_level * level.at_risk_per_hour + w_cusum * cusum.at_risk_per_hour) / (
        w_level + w_cusum
    )
    main = level if w_level >= w_cusum else cusum
    return Onset(
        start=main.start,
        at_risk_per_hour=risk,
        expected_revenue_per_hour=main.expected_revenue_per_hour,
        observed_revenue_per_hour=main.observed_revenue_per_hour,
        variance=1.0 / (w_level + w_cusum),
    )
