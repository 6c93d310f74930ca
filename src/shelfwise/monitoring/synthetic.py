"""Synthetic hourly money series with an injected incident and its known truth.

A store with four recommendation modules over eight top-level categories,
weekly and daily traffic cycles, a peak-season ramp in the last week, hourly
CTR jitter (so the data is noisier than Poisson, as real data is) and gamma
order values. Real click-through rates also move together across hours; the
spec can add the noise families of ``NOISE_FAMILIES`` (a shift per day, AR(1)
noise, a slow random walk, a weekend pattern) on top of the jitter, each split
between a part the whole shop shares (traffic mix, campaigns, season: every
module's CTR moves with it) and a part of each series' own (``ctr_local_share``
of the variance: a category's stock, prices or promotions). Incidents can be
injected: a relative CTR loss on one (placement, category) series from a given
hour on. The truth is the expected revenue lost per hour, which the detector
should recover.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from shelfwise.monitoring.series import FloatArray, HourlySeries, hour_of_week


@dataclass(frozen=True)
class Module:
    placement: str
    peak_impressions: float  # item impressions per hour at the daily peak, all categories
    ctr: float
    conversion: float
    order_value: float


MODULES: tuple[Module, ...] = (
    Module("home_top_picks", 2_000_000, 0.040, 0.050, 70.0),
    Module("product_similar", 600_000, 0.030, 0.060, 55.0),
    Module("cart_addons", 20_000, 0.030, 0.060, 45.0),
    Module("email_digest", 80_000, 0.020, 0.040, 60.0),
)
CATEGORY_SHARES: tuple[tuple[str, float], ...] = (
    ("bedding", 0.26),
    ("kitchen", 0.22),
    ("decor", 0.14),
    ("bath", 0.11),
    ("lighting", 0.09),
    ("seasonal", 0.09),
    ("parts", 0.05),
    ("utility", 0.04),
)


@dataclass(frozen=True)
class Incident:
    placement: str
    category: str
    ctr_loss: float  # relative, 0.02 = CTR falls by 2% of itself
    start_hour: int  # column of the series


@dataclass(frozen=True)
class SyntheticSpec:
    days: int = 35
    seed: int = 11
    start: datetime = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
    peak_season_lift: float = 1.3  # traffic multiplier reached in the last week
    ctr_jitter: float = 0.005  # hourly relative CTR noise
    incidents: tuple[Incident, ...] = field(default_factory=tuple)
    ctr_day_sd: float = 0.0  # relative CTR shift shared by the hours of a UTC day
    ctr_ar_sd: float = 0.0  # marginal sd of hourly AR(1) relative CTR noise ...
    ctr_ar_rho: float = 0.9  # ... and its lag-1 correlation
    ctr_drift_per_day: float = 0.0  # sd per day of a random walk in log CTR
    ctr_weekend_lift: float = 0.0  # relative CTR change on Saturdays and Sundays
    # Share of the variance of the day, AR(1) and drift noise that is each series'
    # own; the rest is one shift the whole shop shares. 1.0: every series on its own.
    ctr_local_share: float = 1.0


LOCAL_SHARE = 0.1  # see docs/monitoring.md, "The noise families"
NOISE_FAMILIES: dict[str, dict[str, float]] = {
    "independent": {},
    "day_to_day": {"ctr_day_sd": 0.01, "ctr_local_share": LOCAL_SHARE},
    "ar1": {"ctr_ar_sd": 0.01, "ctr_ar_rho": 0.9, "ctr_local_share": LOCAL_SHARE},
    "slow_drift": {"ctr_drift_per_day": 0.003, "ctr_local_share": LOCAL_SHARE},
    "weekly": {"ctr_weekend_lift": 0.03},
    # The same moves, every series on its own (no shop-wide part): the hard case.
    "day_to_day_local": {"ctr_day_sd": 0.01},
    "ar1_local": {"ctr_ar_sd": 0.01, "ctr_ar_rho": 0.9},
    "slow_drift_local": {"ctr_drift_per_day": 0.003},
}


def _correlated(
    spec: SyntheticSpec, rng: np.random.Generator, rows: int, epoch_hours: np.ndarray, scale: float
) -> FloatArray:
    """Day shifts, AR(1) and a random walk for ``rows`` rows, their sds times ``scale``."""
    hours = epoch_hours.size
    out = np.zeros((rows, hours))
    if spec.ctr_day_sd:
        day = (epoch_hours - epoch_hours[0]) // 24
        out += rng.normal(0.0, spec.ctr_day_sd * scale, size=(rows, int(day[-1]) + 1))[:, day]
    if spec.ctr_ar_sd:
        rho, sd = spec.ctr_ar_rho, spec.ctr_ar_sd * scale
        shocks = rng.normal(0.0, sd * np.sqrt(1 - rho**2), size=(rows, hours))
        ar = np.empty((rows, hours))
        ar[:, 0] = rng.normal(0.0, sd, size=rows)
        for t in range(1, hours):
            ar[:, t] = rho * ar[:, t - 1] + shocks[:, t]
        out += ar
    if spec.ctr_drift_per_day:
        step = spec.ctr_drift_per_day * scale / np.sqrt(24.0)
        out += np.cumsum(rng.normal(0.0, step, size=(rows, hours)), axis=1)
    return out


def correlated_ctr_noise(spec: SyntheticSpec, series: int, epoch_hours: np.ndarray) -> FloatArray:
    """Log CTR multipliers (series, hours) of the spec's correlated noise families.

    Each series' own part and the shop's shared part come from their own
    generators, so a spec without them gives the same series as before they existed.
    """
    share = float(np.clip(spec.ctr_local_share, 0.0, 1.0))
    out = _correlated(spec, np.random.default_rng([spec.seed, 1]), series, epoch_hours, 1.0)
    out *= np.sqrt(share)
    if share < 1.0:
        shop = np.random.default_rng([spec.seed, 2])
        out += _correlated(spec, shop, 1, epoch_hours, np.sqrt(1.0 - share))
    if spec.ctr_weekend_lift:
        weekend = hour_of_week(epoch_hours) // 24 >= 5
        out += np.log1p(spec.ctr_weekend_lift) * weekend[None, :]
    return out


@dataclass
class SyntheticStore:
    series: HourlySeries
    expected_loss: FloatArray  # (S, T) expected revenue lost per hour by the incidents

    def truth_per_hour(self, s: int, lo: int, hi: int) -> float:
        return float(self.expected_loss[s, lo:hi].sum()) / (hi - lo)


def traffic_shape(epoch_hours: np.ndarray) -> FloatArray:
    """Relative traffic per hour: a daily cycle peaking at 20:00 UTC, quieter weekdays."""
    how = hour_of_week(epoch_hours)
    hod, dow = how % 24, how // 24
    daily = 0.25 + 0.75 * np.exp(-(((hod - 20 + 12) % 24 - 12) ** 2) / (2 * 4.0**2))
    weekly = np.where(dow >= 5, 1.15, 1.0)
    shape: FloatArray = daily * weekly
    return shape


def peak_hour(spec: SyntheticSpec, day: int) -> int:
    """The column of 20:00 UTC on ``day`` (0-based)."""
    first = spec.start.replace(minute=0, second=0, microsecond=0)
    return day * 24 + (20 - first.hour) % 24


def generate(spec: SyntheticSpec) -> SyntheticStore:
    rng = np.random.default_rng(spec.seed)
    hours = spec.days * 24
    keys = [(m.placement, c) for m in MODULES for c, _ in CATEGORY_SHARES]
    series = HourlySeries.empty(keys, spec.start, hours)
    shape = traffic_shape(series.epoch_hours)
    season = 1.0 + (spec.peak_season_lift - 1.0) * np.clip(
        (np.arange(hours) - (hours - 7 * 24)) / (7 * 24), 0.0, 1.0
    )
    day_noise = np.repeat(rng.lognormal(0.0, 0.05, size=(len(keys), spec.days)), 24, axis=1)
    lam = np.array([m.peak_impressions * share for m in MODULES for _, share in CATEGORY_SHARES])
    ctr = np.array([m.ctr for m in MODULES for _ in CATEGORY_SHARES])
    conv = np.array([m.conversion for m in MODULES for _ in CATEGORY_SHARES])
    aov = np.array([m.order_value for m in MODULES for _ in CATEGORY_SHARES])

    impressions = rng.poisson(lam[:, None] * shape[None, :] * season[None, :] * day_noise)
    loss = np.zeros((len(keys), hours))
    for inc in spec.incidents:
        s = keys.index((inc.placement, inc.category))
        loss[s, inc.start_hour :] = inc.ctr_loss
    jitter = rng.lognormal(0.0, spec.ctr_jitter, size=impressions.shape)
    shared = np.exp(correlated_ctr_noise(spec, len(keys), series.epoch_hours))
    jitter *= shared
    true_ctr = ctr[:, None] * jitter * (1.0 - loss)
    clicks = rng.binomial(impressions, np.clip(true_ctr, 0, 1))
    orders = rng.binomial(clicks, conv[:, None])
    # Order values: gamma with shape 2 per order, so a sum of n orders is gamma(2n).
    revenue = np.where(orders > 0, rng.gamma(2.0 * np.maximum(orders, 1), aov[:, None] / 2.0), 0.0)

    series.impressions = impressions.astype(float)
    series.clicks = clicks.astype(float)
    series.orders = orders.astype(float)
    series.revenue = revenue
    # The truth follows the CTR the shop really had (its correlated moves), not its
    # long-run mean; the hourly jitter averages out.
    expected_loss = impressions * ctr[:, None] * shared * loss * conv[:, None] * aov[:, None]
    return SyntheticStore(series=series, expected_loss=expected_loss)


def incident_spec(seed: int = 11) -> SyntheticSpec:
    """The done-when scenario: a 2% CTR loss on the home page's top category from a
    peak hour of the last week, and a 5% loss on the low-traffic cart module."""
    spec = SyntheticSpec(seed=seed)
    at = peak_hour(spec, spec.days - 3)
    return SyntheticSpec(
        seed=seed,
        incidents=(
            Incident("home_top_picks", "bedding", 0.02, at),
            Incident("cart_addons", "lighting", 0.05, at),
        ),
    )
