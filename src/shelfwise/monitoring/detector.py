"""Revenue at risk per placement x category series, with burn rates and FDR control.

Money moves through a funnel: impressions -> clicks (CTR) -> orders (conversion)
-> revenue (order value). For each series the baseline learns the
click-through and conversion rates by hour of week (hour of day, times a
day-of-week factor kept only as far as the reference shows a weekly pattern
beyond its day-to-day noise) and the series' order value. Traffic is taken as
observed: a quiet night is not an incident.

For a window of ``w`` hours ending now, each stage's deficit is
``expected - observed`` (expected clicks = impressions x CTR; expected orders =
observed clicks x conversion). A stage's deficit is worth money (a lost click is
worth conversion x order value; a lost order its order value). It is tested
one-sided against the variance that ``w``-hour sums actually showed over the
reference (:mod:`.noise`: counting noise plus rate shifts shared by the hours
of a window, Student t on the effective number of independent windows), plus
the baseline's own error. Each is tested twice: as it is (raw), and against
its expectation times the shift the rest of the shop shows over the same
hours (relative, :mod:`.common`), which takes out what the whole shop's
traffic does; the smaller p-value, doubled, counts. Benjamini-Hochberg runs
over every (series, stage) test of the window; only significant stages count
toward the money at risk. A sequential test (:mod:`.sequential`) accumulates
the relative test's evidence over the last few fast windows, so a loss too
small for one window is found once a few windows have carried it, and the
level test (:mod:`.level`) compares the hours since a candidate onset with the
series' own hours before it. The money per hour is turned into a burn rate
against the daily loss budget: the fast window pages, the slow window opens a
ticket. What an alert states (since when, how much per hour) is
:func:`.money.money_at_risk`'s: the onset CUSUM's (:func:`onset`), or where the
level test passed, its own fit of the loss.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from scipy import special

from shelfwise.monitoring.common import leave_one_out, prior_counts
from shelfwise.monitoring.level import (
    LevelNoise,
    fit_level_noise,
    level_statistic,
    shop_move,
    tiled,
)
from shelfwise.monitoring.noise import WindowNoise, fit_window_noise, window_sums
from shelfwise.monitoring.sequential import Accumulated, accumulate, normal_scores
from shelfwise.monitoring.series import (
    HOURS_PER_WEEK,
    FloatArray,
    HourlySeries,
    IntArray,
    hour_of_week,
)

Severity = Literal["page", "ticket"]
MoneyEstimate = Literal["onset", "level", "inverse_variance"]
STAGES = ("click_through", "conversion")


@dataclass(frozen=True)
class DetectorConfig:
    budget_per_day: float = 2_400.0
    fast_window_hours: int = 3
    slow_window_hours: int = 12
    page_burn: float = 6.0
    ticket_burn: float = 2.0
    # Picked on calibration seeds (benchmarks/alerts.py): 0.0005 by counting alerts, then
    # moved by 2 log units (times e^-2) with the sequential threshold (9 + 2) where the
    # fitted tails of all the tests allow the lowest level threshold (#23).
    fdr: float = 0.0005 * math.exp(-2.0)
    onset_lookback_hours: int = 72
    # The sequential test (:mod:`.sequential`): a CUSUM over the last
    # ``sequential_windows`` fast windows, tuned to a relative loss of ``sequential_drop``,
    # alarming above ``sequential_threshold`` (log-likelihood ratio; 0 turns it off).
    sequential_drop: float = 0.02
    sequential_windows: int = 3
    sequential_threshold: float = 11.0
    sequential_shared: float = 0.5  # weight of the shared share of the variance (0: Page)
    # An open alert resolves after this many consecutive hours without a finding, so
    # one episode whose loss flickers below the thresholds stays one alert.
    resolve_after_hours: int = 24  # picked on calibration seeds (benchmarks/alerts.py)
    # The money at risk is counted from the series' level just before the onset where
    # the baseline shows its level wanders (see :func:`onset`); False: from the baseline.
    onset_level: bool = True
    # The level test (:mod:`.level`): the change-point likelihood ratio of a loss of
    # ``sequential_drop`` in the click-through rate against the series' own recent level,
    # over the last ``level_window_hours`` (onsets in the last ``level_changes_hours``),
    # alarming above ``level_threshold`` (log-likelihood ratio; 0 turns it off).
    level_threshold: float = 11.0  # picked on calibration seeds by the fitted tails (benchmarks)
    level_window_hours: int = 72
    # Onsets further back than a day found no calibration drop sooner and raised the
    # null tail (slow_drift_local; picked on calibration seeds, benchmarks/README.md).
    level_changes_hours: int = 24
    # The base over which the level statistic's tail is fitted (:mod:`.tail`): below
    # any threshold considered, high enough for the tail to be exponential.
    level_tail_base: float = 6.0
    # The same for the other tests' excess past their thresholds (:mod:`.tail`, log units):
    # 5 below the thresholds they had before they were moved by 2, where it was fitted.
    others_tail_base: float = -7.0
    # The money at risk of an alert on a series whose level test passed its threshold
    # (:func:`.money.money_at_risk`): "onset", the onset CUSUM's (step 8 of
    # docs/monitoring.md); "level", the level test's own fit of the loss since its onset;
    # "inverse_variance", the two weighed by their variances under the level test's noise.
    money_estimate: MoneyEstimate = "level"  # picked on calibration seeds

    @property
    def budget_per_hour(self) -> float:
        return self.budget_per_day / 24.0


@dataclass(frozen=True)
class Baseline:
    """Per series: funnel rates by hour of week (S, 168), order value, noise, revenue shape.

    ``weekly`` (S, 2) is how much of the day-of-week pattern each stage's rates
    keep (0: hour of day only, 1: the raw day-of-week factors): it is the
    empirical-Bayes weight of the between-weekday spread over the day-to-day
    noise. ``support`` (S, 2, 168) are the counts a rate's Poisson error is worth
    (its relative variance is ``1 / support``); ``noise`` holds the variance model per window length.
    """

    ctr: FloatArray
    conversion: FloatArray
    order_value: FloatArray
    revenue_per_hour: FloatArray  # (S, 168) mean revenue per hour of week over the reference
    weekly: FloatArray
    support: FloatArray
    in_sample_share: FloatArray  # (S, 2): share of a day's shift the rates absorbed
    drift: FloatArray  # (S, 2): relative variance the rate level gains per day (random walk)
    noise: dict[int, WindowNoise]
    reference_hours: int
    # The relative test (against the shop's shift over the same window, :mod:`.common`):
    # prior counts k per window length (2,), its noise per window and its drift.
    prior: dict[int, FloatArray]
    relative_noise: dict[int, WindowNoise]
    relative_drift: FloatArray
    lookback_hours: int = 72  # hours between the reference's end and the evaluated window
    level: LevelNoise | None = None  # the level test's noise of hourly CTR residuals
    # The shop's own hourly CTR moves (one row): what the level test's shop factor is
    # smoothed with (:func:`.level.shop_move`); None: the factor of :mod:`.common`.
    shop_level: LevelNoise | None = None


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
    # The level test's onset and loss when it passed its threshold on this series.
    level: Onset | None = None


def _by_cell(values: FloatArray, cell: IntArray, cells: int) -> FloatArray:
    """Sum the columns of (S, T) ``values`` into (S, cells) bins."""
    out = np.zeros((values.shape[0], cells))
    np.add.at(out.T, cell, values.T)
    return out


def _weekly_rates(
    num: FloatArray, den: FloatArray, epoch_hours: IntArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Rates ``num / den`` by hour of week: hour of day x a shrunk day-of-week factor.

    The hour-of-day rates are shrunk toward the series rate (the prior weighs
    one day). Each weekday's factor (its count over what the hour-of-day rates
    expect) is shrunk toward 1 by ``B = τ² / (τ² + noise)``, where ``noise`` is
    the day-to-day spread within a weekday divided by the days behind a factor
    and ``τ²`` the spread between weekdays beyond that noise; B = 0 unless that
    spread is beyond chance (F test at 1%), and with fewer than two weeks of
    reference, where there is no within-weekday spread to learn from.
    Returns the (S, 168) rates, B (S,) and the support of each rate (S, 168).
    """
    how = hour_of_week(epoch_hours)
    hod, dow = how % 24, how // 24
    days = np.maximum(np.bincount(hod, minlength=24), 1).astype(float)
    n_hod, d_hod = _by_cell(num, hod, 24), _by_cell(den, hod, 24)
    rate_s = n_hod.sum(1) / np.maximum(d_hod.sum(1), 1e-9)
    prior = d_hod / days
    rate_hod = (n_hod + prior * rate_s[:, None]) / np.maximum(d_hod + prior, 1e-9)
    support_hod = n_hod + prior * rate_s[:, None]

    expected = den * rate_hod[:, hod]
    day = epoch_hours // 24 - epoch_hours[0] // 24  # UTC days
    n_day, e_day = _by_cell(num, day, int(day[-1]) + 1), _by_cell(expected, day, int(day[-1]) + 1)
    day_dow = np.array([int(dow[day == k][0]) for k in range(n_day.shape[1])])
    ok = e_day > 1e-9
    ratio = np.where(ok, n_day / np.where(ok, e_day, 1.0), 0.0)
    weekly = np.zeros(num.shape[0])
    factor = np.ones((num.shape[0], 7))
    per_dow = np.bincount(day_dow, minlength=7)
    if n_day.shape[1] >= 14 and per_dow.min() >= 2:
        factor = _by_cell(n_day, day_dow, 7) / np.maximum(_by_cell(e_day, day_dow, 7), 1e-9)
        within = np.zeros(num.shape[0])
        for d in range(7):
            r, seen = ratio[:, day_dow == d], ok[:, day_dow == d]
            mean = (r * seen).sum(1, keepdims=True) / np.maximum(seen.sum(1, keepdims=True), 1)
            within += (((r - mean) * seen) ** 2).sum(1)
        noise = within / max(n_day.shape[1] - 7, 1) * float(np.mean(1.0 / per_dow))
        between = factor.var(axis=1, ddof=1)
        # Only a weekly pattern the reference shows beyond chance (F test at 1%) is kept:
        # F(6, n - 7)'s 99th percentile.
        bar = special.fdtri(6, n_day.shape[1] - 7, 0.99)
        real = between / np.maximum(noise, 1e-300) > bar
        tau2 = np.maximum(between - noise, 0.0)
        weekly = np.where(real, tau2 / np.maximum(tau2 + noise, 1e-300), 0.0)
    shrunk = 1.0 + weekly[:, None] * (factor - 1.0)
    cells = np.arange(HOURS_PER_WEEK)
    rates: FloatArray = rate_hod[:, cells % 24] * shrunk[:, cells // 24]
    # Counting error of a rate: its hour of day's plus (as far as it is kept) its
    # weekday's, each over the counts behind it.
    n_dow = np.maximum(_by_cell(n_day, day_dow, 7), 1.0)
    rel = (
        1.0 / np.maximum(support_hod[:, cells % 24], 1.0)
        + weekly[:, None] ** 2 / n_dow[:, cells // 24]
    )
    support: FloatArray = 1.0 / rel
    return rates, weekly, support


def _drift(
    observed: FloatArray, expected: FloatArray, epoch_hours: IntArray, k: float | None = None
) -> FloatArray:
    """Per series, the variance per day of a random walk in the rate's level
    (relative to the rest of the shop's that day when ``k``, the shop factor's prior
    counts, is given).

    From the variogram of daily relative residuals: for a walk with daily
    variance q plus independent day noise, ``E (d_{k+L} - d_k)² = L q + 2 σ²``,
    so ``q = (V_7 - V_1) / 6``, half the series' own and half the shop's. Zero when
    the level does not wander (or the reference is shorter than two weeks).
    """
    day = epoch_hours // 24 - epoch_hours[0] // 24  # UTC days
    days = int(day[-1]) + 1
    out = np.zeros(observed.shape[0])
    if days < 14:
        return out
    o, e = _by_cell(observed, day, days), _by_cell(expected, day, days)
    if k is not None:
        e = e * leave_one_out(o, e, k)
    d = np.where(e > 1.0, o / np.maximum(e, 1.0) - 1.0, 0.0)
    v1 = ((d[:, 1:] - d[:, :-1]) ** 2).mean(1)
    v7 = ((d[:, 7:] - d[:, :-7]) ** 2).mean(1)
    # One series' variogram is noisy and its positive part biased upward: each series
    # keeps half its own estimate and takes half the shop's (weighted by precision).
    raw = (v7 - v1) / 6.0
    weight = 1.0 / np.maximum(v1, 1e-12) ** 2
    pool = float((weight * raw).sum() / weight.sum())
    q: FloatArray = np.maximum(0.5 * raw + 0.5 * pool, 0.0)
    return q


def fit_baseline(
    ref: HourlySeries, windows: tuple[int, ...] = (3, 12), lookback_hours: int = 72
) -> Baseline:
    """Learn the funnel rates by hour of week, revenue by hour of week, and the noise of
    ``windows``-hour sums (see :mod:`.noise`)."""
    how = hour_of_week(ref.epoch_hours)
    weeks = np.maximum(np.bincount(how, minlength=HOURS_PER_WEEK), 1).astype(float)
    ctr, w_c, sup_c = _weekly_rates(ref.clicks, ref.impressions, ref.epoch_hours)
    conv, w_o, sup_o = _weekly_rates(ref.orders, ref.clicks, ref.epoch_hours)
    order_value = ref.revenue.sum(1) / np.maximum(ref.orders.sum(1), 1.0)
    observed = (ref.clicks, ref.orders)
    expected = (ref.impressions * ctr[:, how], ref.clicks * conv[:, how])
    ref_days = max(ref.hours / 24.0, 1.0)
    # A shift shared by a day is averaged into the rates over all days (hour of day)
    # and into the weekday factor over the days of that weekday (weight ``weekly``).
    share = np.stack([(1.0 + 7.0 * w_c), (1.0 + 7.0 * w_o)], axis=1) / ref_days
    share = np.minimum(share, 0.5)
    lengths = sorted(set(windows) | {1, 24})
    prior = {
        w: np.array(
            [
                prior_counts(window_sums(o, w), window_sums(e, w))
                for o, e in zip(observed, expected, strict=True)
            ]
        )
        for w in lengths
    }

    def factors(w: int) -> tuple[FloatArray, ...]:
        return tuple(
            leave_one_out(window_sums(o, w), window_sums(e, w), float(prior[w][k]))
            for k, (o, e) in enumerate(zip(observed, expected, strict=True))
        )

    base = Baseline(
        drift=np.stack(
            [_drift(o, e, ref.epoch_hours) for o, e in zip(observed, expected, strict=True)], axis=1
        ),
        ctr=ctr,
        conversion=conv,
        order_value=order_value,
        revenue_per_hour=_by_cell(ref.revenue, how, HOURS_PER_WEEK) / weeks,
        weekly=np.stack([w_c, w_o], axis=1),
        support=np.stack([sup_c, sup_o], axis=1),
        in_sample_share=share,
        noise={
            w: fit_window_noise(observed, expected, w, in_sample_share=share)
            for w in sorted(set(windows))
        },
        reference_hours=ref.hours,
        lookback_hours=lookback_hours,
        prior=prior,
        relative_noise={
            w: fit_window_noise(observed, expected, w, in_sample_share=share, factors=factors(w))
            for w in sorted(set(windows))
        },
        relative_drift=np.stack(
            [
                _drift(o, e, ref.epoch_hours, float(prior[24][k]))
                for k, (o, e) in enumerate(zip(observed, expected, strict=True))
            ],
            axis=1,
        ),
    )
    # The level's offset from the baseline over a window: the rates' counting error
    # and the random walk's since the reference (as in :func:`stage_deficits`).
    horizon = (lookback_hours + 12) / 24.0 + ref.hours / 24.0 / 6.0
    day = ref.epoch_hours // 24
    # The shop's own hourly moves (its total against its expectation), the same model
    # as a series': what its factor in the level test is smoothed with.
    o_shop, e_shop = ref.clicks.sum(0, keepdims=True), expected[0].sum(0, keepdims=True)
    shop_offset = (1.0 / np.maximum(sup_c.sum(0), 1.0)).mean() + _drift(
        o_shop, e_shop, ref.epoch_hours
    ) * horizon
    shop = fit_level_noise(
        np.where(e_shop > 0, o_shop / np.maximum(e_shop, 1e-9) - 1.0, 0.0),
        1.0 / np.maximum(e_shop, 1.0),
        shop_offset,
        day,
    )
    base = replace(base, shop_level=shop)
    r, count_var, _, _ = level_residuals(base, ref)
    offset = (1.0 / np.maximum(sup_c, 1.0)).mean(1) + base.relative_drift[:, 0] * horizon
    level = fit_level_noise(r, count_var, offset, day)
    return replace(base, level=weekday_day_var(level, ref, w_c))


def weekday_day_var(level: LevelNoise, ref: HourlySeries, weekly: FloatArray) -> LevelNoise:
    """The level noise with the day shifts a weekday factor brings out of its reference.

    A rate's weekday factor (kept with weight ``weekly``, :func:`_weekly_rates`) rests
    on the reference's few days of that weekday. In the reference it absorbed
    ``7 weekly / days`` of every day's shift, so the day shifts fitted there are that
    much too small; outside it, each day's expectation carries its weekday factor's
    counting error (``weekly² / clicks`` of that weekday), one per day: a shift shared
    by the day's hours that the fit never saw.
    """
    if level.day_var is None:
        return level
    n_dow = _by_cell(ref.clicks, hour_of_week(ref.epoch_hours) // 24, 7)
    absorbed = np.minimum(7.0 * weekly / max(ref.hours / 24.0, 1.0), 0.5)
    counting = weekly**2 * (1.0 / np.maximum(n_dow, 1.0)).mean(1)
    return replace(level, day_var=level.day_var / (1.0 - absorbed) + counting)


def shop_factor(shop: LevelNoise, y: FloatArray, var: FloatArray, day: np.ndarray) -> FloatArray:
    """Each series' shop factor ``1 + E[m | y]`` (:func:`.level.shop_move`) from ``y``
    (S, N), the other series' relative residuals, with variance ``var`` (S, N), under the
    shop's own noise model ``shop`` (one row); ``day`` (N,) the UTC day of each hour."""
    out: FloatArray = 1.0 + shop_move(tiled(shop, y.shape[0]), y, var, day)
    return out


def level_residuals(
    base: Baseline, cur: HourlySeries
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Hourly CTR residuals of ``cur`` for the level test (:mod:`.level`), each (S, N):
    relative residual against the baseline's rate times the shop's hourly factor, its
    counting variance (the series' and the factor's), the expected clicks, and what a
    lost click is worth."""
    how = hour_of_week(cur.epoch_hours)
    expected = cur.impressions * base.ctr[:, how]
    others = expected.sum(0, keepdims=True) - expected
    if base.shop_level is None:
        factor = leave_one_out(cur.clicks, expected, float(base.prior[1][0]))
    else:
        # The shop's move measured on the other series, smoothed over the window's
        # hours by the shop's own noise model (a shift the hours share is measured on
        # all of them), instead of shrunk hour by hour toward 1.
        y = np.where(
            others > 0,
            (cur.clicks.sum(0, keepdims=True) - cur.clicks) / np.maximum(others, 1e-9) - 1.0,
            0.0,
        )
        factor = shop_factor(
            base.shop_level, y, 1.0 / np.maximum(others, 1.0), cur.epoch_hours // 24
        )
    mu = expected * factor
    r = np.where(mu > 0, cur.clicks / np.maximum(mu, 1e-9) - 1.0, 0.0)
    # The factor's error: the hourly shrunk factor's variance, ``1 / (others + k)``; the
    # smoothed one's is at most that (it conditions on more of the others' hours).
    count_var = 1.0 / np.maximum(mu, 1.0) + 1.0 / np.maximum(others + base.prior[1][0], 1.0)
    value = base.conversion[:, how] * base.order_value[:, None]
    return r, count_var, mu, value


@dataclass(frozen=True)
class StageDeficits:
    """Per series and stage (S, 2): expected and observed counts, money per unit, variance."""

    expected: FloatArray
    observed: FloatArray
    value: FloatArray
    variance: FloatArray  # of observed - expected under "nothing changed"
    df: FloatArray  # degrees of freedom behind the variance
    # Relative variance this window shares with its neighbours (a shift that lasts
    # longer than the window, the baseline's own error): for the sequential test.
    shared: FloatArray | None = None

    @property
    def money(self) -> FloatArray:
        return (self.expected - self.observed) * self.value

    @property
    def z(self) -> FloatArray:
        """Standardised shortfall: about N(0, 1) (t with ``df``) when nothing changed."""
        z: FloatArray = (self.expected - self.observed) / np.sqrt(np.maximum(self.variance, 1e-12))
        return z


def stage_deficits(
    base: Baseline, cur: HourlySeries, window: int | None = None, *, relative: bool = False
) -> StageDeficits:
    """Stage deficits summed over the hours of ``cur``, tested with the noise of
    ``window``-hour sums (default: ``cur``'s length). ``relative``: expectations
    times the shop's shift over the same hours, measured on the other series of
    ``cur`` (:mod:`.common`), with the noise and drift of that comparison."""
    w = window or cur.hours
    if w not in base.noise:
        raise ValueError(f"the baseline has no noise model for {w}-hour windows")
    noise = (base.relative_noise if relative else base.noise)[w]
    drift = base.relative_drift if relative else base.drift
    how = hour_of_week(cur.epoch_hours)
    ctr, conv = base.ctr[:, how], base.conversion[:, how]
    exp_c_h = cur.impressions * ctr
    exp_o_h = cur.clicks * conv
    observed = np.stack([cur.clicks.sum(1), cur.orders.sum(1)], axis=1)
    expected = np.stack([exp_c_h.sum(1), exp_o_h.sum(1)], axis=1)
    if relative:
        f = np.stack(
            [
                leave_one_out(observed[:, k], expected[:, k], float(base.prior[w][k]))
                for k in (0, 1)
            ],
            axis=1,
        )
        expected = expected * f
        exp_c_h, exp_o_h = exp_c_h * f[:, :1], exp_o_h * f[:, 1:]
    # The baseline's own error: each hour inherits its rate's counting error, and the
    # window as a whole the part of a shared shift the reference could not average out.
    count_err = np.stack(
        [
            (
                _by_cell(e, how, HOURS_PER_WEEK) ** 2 * noise.a[:, k, None] / np.maximum(sup, 1.0)
            ).sum(1)
            for k, (e, sup) in enumerate(
                ((exp_c_h, base.support[:, 0]), (exp_o_h, base.support[:, 1]))
            )
        ],
        axis=1,
    )
    shift_err = noise.b * base.in_sample_share * expected**2
    # A level that wanders moved on since the reference: from the reference's mean
    # to now is about the look-back plus a sixth of the reference beyond what the
    # reference's own windows already showed (a walk's spread around its mean).
    horizon = (base.lookback_hours + 12) / 24.0 + base.reference_hours / 24.0 / 6.0
    shift_err = shift_err + drift * horizon * expected**2
    # The part of the window's own shift that lasts: from the longest window's shift
    # variance b_L = c + (b_w - c) / n for n windows of w hours in L (c persists over L).
    longer = [n for n in (base.relative_noise if relative else base.noise) if n > w]
    persistent = np.zeros_like(noise.b)
    if longer:
        n = max(longer) / w
        b_long = (base.relative_noise if relative else base.noise)[max(longer)].b
        persistent = np.clip((n * b_long - noise.b) / (n - 1.0), 0.0, noise.b)
    # A lost click is worth the conversion-weighted order value of its hours.
    wt = np.maximum(exp_c_h, 1e-12)
    conv_mean = (wt * conv).sum(1) / wt.sum(1)
    return StageDeficits(
        expected=expected,
        observed=observed,
        value=np.stack([conv_mean * base.order_value, base.order_value], axis=1),
        variance=noise.variance(expected) + count_err + shift_err,
        df=noise.df,
        shared=persistent + shift_err / np.maximum(expected, 1e-9) ** 2,
    )


def shortfall_p_values(d: StageDeficits) -> FloatArray:
    """One-sided p-values that observed counts fell short of expected.

    Student t with the noise model's degrees of freedom on the standardised
    shortfall; for small expectations the Poisson tail at the model's
    effective dispersion is used instead.
    """
    p_t: FloatArray = special.stdtr(d.df, -d.z)
    ratio = d.expected / np.maximum(d.variance, 1e-12)  # 1 / effective dispersion
    p_small: FloatArray = special.pdtr(np.floor(d.observed * ratio), d.expected * ratio)
    p = np.where(d.expected >= 30, p_t, p_small)
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


@dataclass(frozen=True)
class WindowTest:
    """One window's stage tests for every series: what thresholds are applied to.

    Each (series, stage) is tested twice, against its own expectation (``raw``:
    a shortfall of the whole shop still shows) and against the shop's shift over
    the same hours (``relative``: what the shop shares is taken out); the
    p-value is the smaller, doubled (Bonferroni), and the money that test's.
    """

    hours: int
    deficits: StageDeficits
    p: FloatArray  # (S, 2) one-sided p-values
    raw: StageDeficits
    relative: StageDeficits

    @classmethod
    def at(cls, base: Baseline, series: HourlySeries, end: int, w: int) -> WindowTest:
        lo = max(end - w, 0)
        cur = series.window(lo, end)
        raw = stage_deficits(base, cur, w)
        rel = stage_deficits(base, cur, w, relative=True)
        p_raw, p_rel = shortfall_p_values(raw), shortfall_p_values(rel)
        use = p_rel <= p_raw

        def pick(a: FloatArray, b: FloatArray) -> FloatArray:
            out: FloatArray = np.where(use, a, b)
            return out

        chosen = StageDeficits(
            expected=pick(rel.expected, raw.expected),
            observed=raw.observed,
            value=raw.value,
            variance=pick(rel.variance, raw.variance),
            df=pick(rel.df, raw.df),
        )
        p = np.minimum(2.0 * np.minimum(p_raw, p_rel), 1.0)
        return cls(end - lo, chosen, p, raw, rel)

    def findings(
        self, keys: list[tuple[str, str]], burn: float, sev: Severity, cfg: DetectorConfig
    ) -> list[Finding]:
        """Series whose significant stages (BH at ``cfg.fdr``) lose money at ``burn`` or more."""
        money, p = self.deficits.money, self.p
        significant = benjamini_hochberg(p, cfg.fdr) & (money > 0)
        at_risk = np.where(significant, money, 0.0).sum(1) / self.hours
        out: list[Finding] = []
        for s in np.nonzero(at_risk / cfg.budget_per_hour >= burn)[0]:
            stage = int(np.argmin(np.where(significant[s], p[s], 2.0)))
            broken = tuple(STAGES[i] for i in np.nonzero(significant[s])[0])
            out.append(
                Finding(
                    series=int(s),
                    key=keys[s],
                    severity=sev,
                    window_hours=self.hours,
                    at_risk_per_hour=float(at_risk[s]),
                    burn_rate=float(at_risk[s] / cfg.budget_per_hour),
                    p_value=float(p[s, stage]),
                    stage=STAGES[stage],
                    stages=broken,
                )
            )
        return out


@dataclass(frozen=True)
class SequentialTest:
    """The CUSUM (:mod:`.sequential`) of every series and stage over the relative
    test's last non-overlapping fast windows, oldest first."""

    window_hours: int
    accumulated: Accumulated

    @classmethod
    def of(cls, windows: list[StageDeficits], w: int, cfg: DetectorConfig) -> SequentialTest:
        z = np.stack([normal_scores(shortfall_p_values(d)) for d in windows], axis=-1)
        delta = np.stack(
            [
                cfg.sequential_drop * d.expected / np.sqrt(np.maximum(d.variance, 1e-12))
                for d in windows
            ],
            axis=-1,
        )
        money = np.stack([d.money for d in windows], axis=-1)
        kappa = np.stack(
            [
                (d.shared if d.shared is not None else 0.0)
                * d.expected**2
                / np.maximum(d.variance, 1e-12)
                for d in windows
            ],
            axis=-1,
        )
        return cls(w, accumulate(z, delta, money, w, cfg.sequential_shared * kappa))

    @classmethod
    def at(
        cls, base: Baseline, series: HourlySeries, end: int, cfg: DetectorConfig
    ) -> SequentialTest:
        w = cfg.fast_window_hours
        ends = [e for e in range(end - w * (cfg.sequential_windows - 1), end + 1, w) if e >= w]
        wins = [stage_deficits(base, series.window(e - w, e), w, relative=True) for e in ends]
        return cls.of(wins, w, cfg)

    def findings(self, keys: list[tuple[str, str]], cfg: DetectorConfig) -> list[Finding]:
        """Series whose CUSUM passed the threshold and whose run loses money at the
        ticket burn or more (a page at the page burn)."""
        if cfg.sequential_threshold <= 0:
            return []
        acc = self.accumulated
        significant = (acc.statistic > cfg.sequential_threshold) & (acc.money > 0)
        per_hour = np.where(significant, acc.money / np.maximum(acc.hours, 1.0), 0.0)
        at_risk = per_hour.sum(1)
        out: list[Finding] = []
        for s in np.nonzero(at_risk / cfg.budget_per_hour >= cfg.ticket_burn)[0]:
            stage = int(np.argmax(np.where(significant[s], acc.statistic[s], -1.0)))
            burn = float(at_risk[s] / cfg.budget_per_hour)
            out.append(
                Finding(
                    series=int(s),
                    key=keys[s],
                    severity="page" if burn >= cfg.page_burn else "ticket",
                    window_hours=int(acc.hours[s, stage]),
                    at_risk_per_hour=float(at_risk[s]),
                    burn_rate=burn,
                    # The likelihood ratio's bound for one run: P(LR >= e^S) <= e^-S.
                    p_value=float(np.exp(-acc.statistic[s, stage])),
                    stage=STAGES[stage],
                    stages=tuple(STAGES[i] for i in np.nonzero(significant[s])[0]),
                )
            )
        return out


@dataclass(frozen=True)
class LevelTest:
    """The level test (:mod:`.level`) of every series' click-through rate at one hour:
    the statistic, the onset's hour behind it, the clicks short of expectation since
    then in money (what the threshold rule weighs), and the fitted loss since then."""

    statistic: FloatArray  # (S,)
    money: FloatArray  # (S,) clicks short of expectation since the onset, in money
    hours: FloatArray  # (S,) hours since the onset
    start: np.ndarray | None = None  # (S,) column of the onset
    loss: FloatArray | None = None  # (S,) δ̂ x the expected clicks' value since the onset
    loss_var: FloatArray | None = None  # (S,) its variance under the level noise model
    expected: FloatArray | None = None  # (S,) expected revenue since the onset
    observed: FloatArray | None = None  # (S,) observed revenue since the onset
    first: int = 0  # column of the earliest onset searched

    @classmethod
    def at(cls, base: Baseline, series: HourlySeries, end: int, cfg: DetectorConfig) -> LevelTest:
        s = len(series.keys)
        if base.level is None or cfg.level_threshold <= 0 or end < 2:
            return cls(np.zeros(s), np.zeros(s), np.zeros(s))
        lo = max(end - cfg.level_window_hours, 0)
        cur = series.window(lo, end)
        r, count_var, mu, value = level_residuals(base, cur)
        lv = level_statistic(
            r,
            count_var,
            base.level,
            cfg.sequential_drop,
            cfg.level_changes_hours,
            cur.epoch_hours // 24,
        )
        after = np.arange(cur.hours)[None, :] >= lv.start[:, None]
        money = ((mu - cur.clicks) * value * after).sum(1)
        # The expected clicks' value since the onset: what a loss of δ̂ of them is worth.
        worth = (mu * value * after).sum(1)
        return cls(
            statistic=lv.statistic,
            money=money,
            hours=(cur.hours - lv.start).astype(float),
            start=lo + lv.start,
            loss=lv.loss * worth,
            loss_var=worth**2 / np.maximum(lv.information, 1e-300),
            expected=worth,
            observed=(cur.revenue * after).sum(1),
            first=lo + cur.hours - min(cfg.level_changes_hours, cur.hours - 1),
        )

    def alarmable(self, cfg: DetectorConfig) -> FloatArray:
        """The statistic where the loss since the onset is worth the ticket burn or more,
        else 0: a series alarms at a threshold its value passes (:meth:`findings`)."""
        burns = (self.money > 0) & (
            self.money / np.maximum(self.hours, 1.0) / cfg.budget_per_hour >= cfg.ticket_burn
        )
        out: FloatArray = np.where(burns, self.statistic, 0.0)
        return out

    def findings(self, keys: list[tuple[str, str]], cfg: DetectorConfig) -> list[Finding]:
        """Series whose statistic passed the threshold and whose loss since the onset is
        worth the ticket burn or more (a page at the page burn)."""
        if cfg.level_threshold <= 0:
            return []
        # The same rule as the sequential test's, with the conversion stage never significant.
        zero = np.zeros_like(self.statistic)
        as_run = Accumulated(
            statistic=np.stack([self.statistic, zero], axis=1),
            start=np.zeros((self.statistic.size, 2), dtype=np.int64),
            money=np.stack([self.money, zero], axis=1),
            hours=np.stack([self.hours, zero], axis=1),
        )
        same_rule = replace(cfg, sequential_threshold=cfg.level_threshold)
        found = SequentialTest(1, as_run).findings(keys, same_rule)
        return [replace(f, level=self.onset(f.series)) for f in found]

    def onset(self, s: int) -> Onset | None:
        """Series ``s``'s onset and fitted loss per hour since then. None if not recorded,
        or if the onset is the earliest searched: the loss may have begun before it, and
        its first hours would then count as the level before the loss."""
        if (
            self.start is None
            or self.start[s] <= self.first
            or self.loss is None
            or self.loss_var is None
            or self.expected is None
            or self.observed is None
        ):
            return None
        hours = max(float(self.hours[s]), 1.0)
        return Onset(
            start=int(self.start[s]),
            at_risk_per_hour=float(self.loss[s]) / hours,
            expected_revenue_per_hour=float(self.expected[s]) / hours,
            observed_revenue_per_hour=float(self.observed[s]) / hours,
            variance=float(self.loss_var[s]) / hours**2,
        )


def combine(
    pages: list[Finding], tickets: list[Finding], sequential: list[Finding] | None = None
) -> list[Finding]:
    """One finding per series, pages first (a window test's before the sequential one's)."""
    sequential = sequential or []
    ordered = (
        pages
        + [f for f in sequential if f.severity == "page"]
        + tickets
        + [f for f in sequential if f.severity == "ticket"]
    )
    seen: set[int] = set()
    out: list[Finding] = []
    for f in ordered:
        if f.series not in seen:
            seen.add(f.series)
            out.append(f)
    return out


def evaluate(base: Baseline, series: HourlySeries, end: int, cfg: DetectorConfig) -> list[Finding]:
    """Findings for the hours before column ``end``: one per series, pages first."""
    fast = WindowTest.at(base, series, end, cfg.fast_window_hours)
    slow = WindowTest.at(base, series, end, cfg.slow_window_hours)
    seq = SequentialTest.at(base, series, end, cfg)
    level = LevelTest.at(base, series, end, cfg)
    by_level = level.findings(series.keys, cfg)
    passed = {f.series: f.level for f in by_level}
    found = combine(
        fast.findings(series.keys, cfg.page_burn, "page", cfg),
        slow.findings(series.keys, cfg.ticket_burn, "ticket", cfg),
        seq.findings(series.keys, cfg) + by_level,
    )
    # Whichever test's finding is kept, the level test's fit travels with it.
    return [replace(f, level=passed.get(f.series)) for f in found]


@dataclass(frozen=True)
class Onset:
    start: int  # column where the loss began
    at_risk_per_hour: float
    expected_revenue_per_hour: float
    observed_revenue_per_hour: float
    variance: float | None = None  # of ``at_risk_per_hour``, where the estimate states it


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
    maximum of that suffix sum, each hour less an allowance, is the one-sided
    CUSUM change-point estimate. The allowance is half the loss the last fast
    window shows, in proportion to each hour's expected revenue (CUSUM's
    reference value k = δ/2 for a relative drop δ): a loss that follows the
    traffic is followed through quiet nights, and the noise of busy hours
    before the change is not swept into the incident. Never below half the
    smallest loss worth a ticket spread over the day.
    """
    lo = max(end - cfg.onset_lookback_hours, 0)
    one = series.window(lo, end)
    how = hour_of_week(one.epoch_hours)
    ctr, conv, aov = base.ctr[s, how], base.conversion[s, how], base.order_value[s]
    # Each hour's expectation follows the shop's shift of that hour (the rest of the
    # shop, :mod:`.common`): a day the whole shop clicks less is not money this series lost.
    exp_all = one.impressions * base.ctr[:, how]
    f_c = leave_one_out(one.clicks, exp_all, float(base.prior[1][0]))[s]
    exp_o_all = one.clicks * base.conversion[:, how]
    f_o = leave_one_out(one.orders, exp_o_all, float(base.prior[1][1]))[s]
    exp_c = one.impressions[s] * ctr * f_c
    exp_o = one.clicks[s] * conv * f_o
    hourly = np.zeros(one.hours)
    if "click_through" in stages:
        hourly += (exp_c - one.clicks[s]) * conv * aov
    if "conversion" in stages:
        hourly += (exp_o - one.orders[s]) * aov
    expected_money = exp_c * conv * aov
    recent = slice(max(one.hours - cfg.fast_window_hours, 0), one.hours)
    drop = hourly[recent].sum() / max(float(expected_money[recent].sum()), 1e-9)
    floor = cfg.ticket_burn * cfg.budget_per_hour / 2
    share = expected_money / max(float(expected_money.mean()), 1e-9)
    allowance = np.maximum(max(drop, 0.0) / 2 * expected_money, floor * share)
    k = int(np.argmax(np.cumsum((hourly - allowance)[::-1])[::-1]))
    if cfg.onset_level and k > 0:
        # Money from the level the series had just before the onset, as far as its level
        # is known to wander: the hours before the onset measure the series' current level
        # against the baseline; that measurement is weighed by the random walk's variance
        # since the reference (``relative_drift``) against its own noise (counts, and the
        # shifts of the slow window's length averaged over those hours).
        horizon = (base.lookback_hours + 12) / 24.0 + base.reference_hours / 24.0 / 6.0
        slow = base.relative_noise[max(base.relative_noise)]
        levels = []
        for j, (obs, exp) in enumerate(((one.clicks[s], exp_c), (one.orders[s], exp_o))):
            e_pre = float(exp[:k].sum())
            if e_pre <= 0:
                levels.append(1.0)
                continue
            measured = float(obs[:k].sum()) / e_pre - 1.0
            noise = 1.0 / e_pre + float(slow.b[s, j]) * slow.window / k
            prior = float(base.relative_drift[s, j]) * horizon
            levels.append(1.0 + prior / (prior + noise) * measured if prior > 0 else 1.0)
        exp_c = exp_c * levels[0]
        exp_o = exp_o * levels[1]
        hourly = np.zeros(one.hours)
        if "click_through" in stages:
            hourly += (exp_c - one.clicks[s]) * conv * aov
        if "conversion" in stages:
            hourly += (exp_o - one.orders[s]) * aov
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


def baselines(
    series: HourlySeries,
    reference_hours: int,
    cfg: DetectorConfig,
    start: int | None = None,
    end: int | None = None,
    *,
    refit_every: int | None = None,
) -> Iterator[tuple[int, Baseline]]:
    """Every hour ``t`` in ``(start, end]`` with the baseline the evaluator would use at ``t``.

    Without ``refit_every`` the baseline is fitted once on the first
    ``reference_hours`` columns. With it, the baseline is refitted every
    ``refit_every`` hours on the ``reference_hours`` that end
    ``onset_lookback_hours`` before the refit, as ``evaluate_alerts`` fits it
    (there: at every evaluation).
    """
    windows = (cfg.fast_window_hours, cfg.slow_window_hours)
    first = reference_hours if start is None else start
    last = series.hours if end is None else end
    base: Baseline | None = None
    fitted_at = -(1 << 30)
    for t in range(first + 1, last + 1):
        if base is None or (refit_every is not None and t - fitted_at >= refit_every):
            hi = reference_hours if refit_every is None else t - cfg.onset_lookback_hours
            if hi - reference_hours < 0:
                raise ValueError("not enough history before the first evaluation to refit")
            base = fit_baseline(
                series.window(hi - reference_hours, hi), windows, cfg.onset_lookback_hours
            )
            fitted_at = t
        yield t, base


def scan(
    series: HourlySeries,
    reference_hours: int,
    cfg: DetectorConfig,
    end: int | None = None,
    *,
    start: int | None = None,
    refit_every: int | None = None,
) -> list[Detection]:
    """Replay hourly evaluations (see :func:`baselines`); first firing per series and severity."""
    seen: dict[tuple[tuple[str, str], str], Detection] = {}
    for t, base in baselines(series, reference_hours, cfg, start, end, refit_every=refit_every):
        for f in evaluate(base, series, t, cfg):
            seen.setdefault((f.key, f.severity), Detection(f.key, f.severity, t, f))
    return sorted(seen.values(), key=lambda d: d.detected_at)
