"""Revenue at risk per placement x category series, with burn rates and FDR control.

Money moves through a funnel: impressions -> clicks (CTR) -> orders (conversion)
-> revenue (order value). For each series the baseline learns, per hour of
week, the click-through and conversion rates (shrunk toward the series' own
rate, the prior counting as one more week of data) and the series' order
value. Traffic is taken as observed: a quiet night is not an incident.

For a window of ``w`` hours ending now, each stage's deficit is
``expected - observed`` (expected clicks = impressions x CTR; expected orders =
observed clicks x conversion). A stage's deficit is worth money (a lost click is
worth conversion x order value; a lost order its order value), and is tested
with a quasi-Poisson one-sided test whose dispersion was measured on the
reference window itself. Benjamini-Hochberg runs over every (series, stage)
test of the window, so the expected share of false discoveries among the
flagged stages stays at ``fdr``; only significant stages count toward the money
at risk. The money per hour is turned into a burn rate against the daily loss
budget: the fast window pages, the slow window opens a ticket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import special

from shelfwise.monitoring.series import (
    HOURS_PER_WEEK,
    FloatArray,
    HourlySeries,
    IntArray,
    hour_of_week,
)

Severity = Literal["page", "ticket"]
STAGES = ("click_through", "conversion")


@dataclass(frozen=True)
class DetectorConfig:
    budget_per_day: float = 2_400.0
    fast_window_hours: int = 3
    slow_window_hours: int = 12
    page_burn: float = 6.0
    ticket_burn: float = 2.0
    fdr: float = 0.001
    onset_lookback_hours: int = 72

    @property
    def budget_per_hour(self) -> float:
        return self.budget_per_day / 24.0


@dataclass(frozen=True)
class Baseline:
    """Per series: funnel rates by hour of day (S, 24), order value, noise, revenue shape.

    ``*_support`` are the event counts behind each rate: the rate's own relative
    variance is about ``dispersion / support``, and the test adds it.
    """

    ctr: FloatArray
    conversion: FloatArray
    order_value: FloatArray
    revenue_per_hour: FloatArray  # (S, 168) mean revenue per hour of week over the reference
    dispersion_clicks: FloatArray
    dispersion_orders: FloatArray
    ctr_support: FloatArray
    conversion_support: FloatArray


@dataclass(frozen=True)
class Finding:
    series: int
    key: tuple[str, str]
    severity: Severity
    window_hours: int
    at_risk_per_hour: float  # money per hour, over the window
    burn_rate: float
    p_value: float
    stage: str
    stages: tuple[str, ...]  # every significant stage of the series


def _by_cell(values: FloatArray, cell: IntArray, cells: int) -> FloatArray:
    """Sum the columns of (S, T) ``values`` into (S, cells) bins."""
    out = np.zeros((values.shape[0], cells))
    np.add.at(out.T, cell, values.T)
    return out


def _dispersion(observed: FloatArray, expected: FloatArray, params: int) -> FloatArray:
    """Pearson dispersion per series (>= 1): how much noisier than Poisson the hours are,
    with the degrees of freedom the fitted rates used taken out."""
    ok = expected > 0.5
    resid = np.where(ok, (observed - expected) ** 2 / np.where(ok, expected, 1.0), 0.0)
    n = np.maximum(ok.sum(axis=1) - params, 1)
    phi: FloatArray = np.maximum(resid.sum(axis=1) / n, 1.0)
    return phi


def fit_baseline(ref: HourlySeries) -> Baseline:
    """Learn the funnel rates by hour of day, revenue by hour of week, and the noise level."""
    how = hour_of_week(ref.epoch_hours)
    hod = how % 24
    weeks = np.maximum(np.bincount(how, minlength=HOURS_PER_WEEK), 1).astype(float)
    days = np.maximum(np.bincount(hod, minlength=24), 1).astype(float)
    imps, clicks = _by_cell(ref.impressions, hod, 24), _by_cell(ref.clicks, hod, 24)
    orders = _by_cell(ref.orders, hod, 24)
    ctr_s = clicks.sum(1) / np.maximum(imps.sum(1), 1.0)
    conv_s = orders.sum(1) / np.maximum(clicks.sum(1), 1.0)
    # Shrink each hour of day toward the series rate; the prior weighs one day.
    prior_i, prior_c = imps / days, clicks / days
    ctr = (clicks + prior_i * ctr_s[:, None]) / np.maximum(imps + prior_i, 1e-9)
    conv = (orders + prior_c * conv_s[:, None]) / np.maximum(clicks + prior_c, 1e-9)
    order_value = ref.revenue.sum(1) / np.maximum(ref.orders.sum(1), 1.0)
    exp_clicks = ref.impressions * ctr[:, hod]
    exp_orders = ref.clicks * conv[:, hod]
    return Baseline(
        ctr=ctr,
        conversion=conv,
        order_value=order_value,
        revenue_per_hour=_by_cell(ref.revenue, how, HOURS_PER_WEEK) / weeks,
        dispersion_clicks=_dispersion(ref.clicks, exp_clicks, 24),
        dispersion_orders=_dispersion(ref.orders, exp_orders, 24),
        ctr_support=clicks + prior_c,
        conversion_support=orders + prior_c * conv_s[:, None],
    )


@dataclass(frozen=True)
class StageDeficits:
    """Per series and stage (S, 2): expected and observed counts, money per unit, variance."""

    expected: FloatArray
    observed: FloatArray
    value: FloatArray
    variance: FloatArray  # of observed - expected under "nothing changed"

    @property
    def money(self) -> FloatArray:
        return (self.expected - self.observed) * self.value


def stage_deficits(base: Baseline, cur: HourlySeries) -> StageDeficits:
    """Stage deficits summed over the hours of ``cur``."""
    hod = hour_of_week(cur.epoch_hours) % 24
    ctr, conv = base.ctr[:, hod], base.conversion[:, hod]
    exp_c_h = cur.impressions * ctr
    exp_o_h = cur.clicks * conv
    exp_c, exp_o = exp_c_h.sum(1), exp_o_h.sum(1)
    phi_c, phi_o = base.dispersion_clicks, base.dispersion_orders
    # The baseline's own error: each hour's expectation inherits its rate's variance.
    base_c = _by_cell(exp_c_h, hod, 24) ** 2 * phi_c[:, None] / np.maximum(base.ctr_support, 1.0)
    base_o = (
        _by_cell(exp_o_h, hod, 24) ** 2 * phi_o[:, None] / np.maximum(base.conversion_support, 1.0)
    )
    # A lost click is worth the conversion-weighted order value of its hours.
    w = np.maximum(exp_c_h, 1e-12)
    conv_mean = (w * conv).sum(1) / w.sum(1)
    return StageDeficits(
        expected=np.stack([exp_c, exp_o], axis=1),
        observed=np.stack([cur.clicks.sum(1), cur.orders.sum(1)], axis=1),
        value=np.stack([conv_mean * base.order_value, base.order_value], axis=1),
        variance=np.stack([phi_c * exp_c + base_c.sum(1), phi_o * exp_o + base_o.sum(1)], axis=1),
    )


def shortfall_p_values(d: StageDeficits) -> FloatArray:
    """One-sided p-values that observed counts fell short of expected.

    Normal approximation with the quasi-Poisson variance plus the baseline's own
    error; for small expectations the Poisson tail is used instead.
    """
    z = (d.expected - d.observed) / np.sqrt(np.maximum(d.variance, 1e-12))
    p_normal: FloatArray = special.ndtr(-z)
    ratio = d.expected / np.maximum(d.variance, 1e-12)  # 1 / effective dispersion
    p_small: FloatArray = special.pdtr(np.floor(d.observed * ratio), d.expected * ratio)
    p = np.where(d.expected >= 30, p_normal, p_small)
    return np.where(d.expected > 0, p, 1.0)


def benjamini_hochberg(p: FloatArray, q: float) -> np.ndarray:
    """Boolean mask of discoveries at false discovery rate ``q`` (step-up)."""
    flat = p.ravel()
    m = flat.size
    order = np.argsort(flat)
    passed = flat[order] <= q * np.arange(1, m + 1) / m
    mask = np.zeros(m, dtype=bool)
    if passed.any():
        mask[order[: int(np.nonzero(passed)[0].max()) + 1]] = True
    return mask.reshape(p.shape)


def _window_findings(
    base: Baseline,
    series: HourlySeries,
    end: int,
    w: int,
    burn: float,
    sev: Severity,
    cfg: DetectorConfig,
) -> list[Finding]:
    lo = max(end - w, 0)
    d = stage_deficits(base, series.window(lo, end))
    p = shortfall_p_values(d)
    significant = benjamini_hochberg(p, cfg.fdr) & (d.money > 0)
    at_risk = np.where(significant, d.money, 0.0).sum(1) / (end - lo)
    out: list[Finding] = []
    for s in np.nonzero(at_risk / cfg.budget_per_hour >= burn)[0]:
        stage = int(np.argmin(np.where(significant[s], p[s], 2.0)))
        broken = tuple(STAGES[i] for i in np.nonzero(significant[s])[0])
        out.append(
            Finding(
                series=int(s),
                key=series.keys[s],
                severity=sev,
                window_hours=end - lo,
                at_risk_per_hour=float(at_risk[s]),
                burn_rate=float(at_risk[s] / cfg.budget_per_hour),
                p_value=float(p[s, stage]),
                stage=STAGES[stage],
                stages=broken,
            )
        )
    return out


def evaluate(base: Baseline, series: HourlySeries, end: int, cfg: DetectorConfig) -> list[Finding]:
    """Findings for the hours before column ``end``: one per series, pages first."""
    pages = _window_findings(base, series, end, cfg.fast_window_hours, cfg.page_burn, "page", cfg)
    tickets = _window_findings(
        base, series, end, cfg.slow_window_hours, cfg.ticket_burn, "ticket", cfg
    )
    paged = {f.series for f in pages}
    return pages + [f for f in tickets if f.series not in paged]


@dataclass(frozen=True)
class Onset:
    start: int  # column where the loss began
    at_risk_per_hour: float
    expected_revenue_per_hour: float
    observed_revenue_per_hour: float


def onset(
    base: Baseline,
    series: HourlySeries,
    s: int,
    end: int,
    cfg: DetectorConfig,
    stages: tuple[str, ...] = STAGES,
) -> Onset:
    """When the loss began: the start of the suffix with the largest money deficit.

    Hourly money deficits of ``stages`` (those found significant; a stage that
    did not break only adds noise) are accumulated backwards from ``end``; the
    maximum of that suffix sum is the one-sided CUSUM change-point estimate.
    """
    lo = max(end - cfg.onset_lookback_hours, 0)
    one = series.window(lo, end)
    hod = hour_of_week(one.epoch_hours) % 24
    ctr, conv, aov = base.ctr[s, hod], base.conversion[s, hod], base.order_value[s]
    exp_c = one.impressions[s] * ctr
    hourly = np.zeros(one.hours)
    if "click_through" in stages:
        hourly += (exp_c - one.clicks[s]) * conv * aov
    if "conversion" in stages:
        hourly += (one.clicks[s] * conv - one.orders[s]) * aov
    # An allowance of half the smallest loss worth a ticket keeps noise before the
    # change from being swept into the incident (CUSUM's reference value).
    allowance = cfg.ticket_burn * cfg.budget_per_hour / 2
    k = int(np.argmax(np.cumsum((hourly - allowance)[::-1])[::-1]))
    suffix = np.cumsum(hourly[::-1])[::-1]
    hours = len(hourly) - k
    expected = float((exp_c[k:] * conv[k:] * aov).sum()) / hours
    return Onset(
        start=lo + k,
        at_risk_per_hour=float(suffix[k]) / hours,
        expected_revenue_per_hour=expected,
        observed_revenue_per_hour=float(one.revenue[s, k:].sum()) / hours,
    )


@dataclass(frozen=True)
class Detection:
    key: tuple[str, str]
    severity: Severity
    detected_at: int  # column after the last hour seen when it fired
    finding: Finding


def scan(
    series: HourlySeries, reference_hours: int, cfg: DetectorConfig, end: int | None = None
) -> list[Detection]:
    """Replay hourly evaluations after the reference; first firing per series and severity."""
    base = fit_baseline(series.window(0, reference_hours))
    seen: dict[tuple[tuple[str, str], str], Detection] = {}
    for t in range(reference_hours + 1, (end or series.hours) + 1):
        for f in evaluate(base, series, t, cfg):
            seen.setdefault((f.key, f.severity), Detection(f.key, f.severity, t, f))
    return sorted(seen.values(), key=lambda d: d.detected_at)
