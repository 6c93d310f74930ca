"""Two-arm estimates as pure functions over per-arm sufficient statistics.

Every function takes :class:`Moments` (n, sums, cross-products of per-person
metrics) and returns an :class:`Estimate` whose ``warnings`` carry codes such
as ``LOW_POWER`` or ``ZERO_BASELINE``; nothing here raises on data it cannot
estimate, it says so. Formulas are written out in docs/experiments.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from pydantic import BaseModel, ConfigDict, PrivateAttr
from scipy.special import stdtr, stdtrit

SMALL_SAMPLE = "SMALL_SAMPLE"
NOT_ESTIMABLE = "NOT_ESTIMABLE"
ZERO_BASELINE = "ZERO_BASELINE"
ZERO_VARIANCE = "ZERO_VARIANCE"
LOW_POWER = "LOW_POWER"
NO_PRE_PERIOD = "NO_PRE_PERIOD"
LIFT_UNBOUNDED = "LIFT_UNBOUNDED"
MIN_N = 30
NORMAL = NormalDist()  # stdlib: ~50x cheaper per call than scipy.stats.norm


@dataclass(frozen=True)
class Moments:
    """Sufficient statistics of k per-person metrics over n persons.

    ``sums[i] = Σ x_i`` and ``cross[i, j] = Σ x_i x_j``: enough for every mean,
    variance and covariance below, and additive across shards.
    """

    names: tuple[str, ...]
    n: int
    sums: np.ndarray
    cross: np.ndarray

    @classmethod
    def of(cls, names: Sequence[str], x: np.ndarray) -> Moments:
        """From an (n, k) matrix of per-person values."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, len(names))
        return cls(tuple(names), int(x.shape[0]), x.sum(axis=0), x.T @ x)

    def __add__(self, other: Moments) -> Moments:
        assert self.names == other.names
        return Moments(
            self.names, self.n + other.n, self.sums + other.sums, self.cross + other.cross
        )

    def _i(self, name: str) -> int:
        return self.names.index(name)

    def mean(self, a: str) -> float:
        return float(self.sums[self._i(a)] / self.n) if self.n else math.nan

    def cov(self, a: str, b: str) -> float:
        """Sample covariance (n - 1 in the denominator)."""
        if self.n < 2:
            return math.nan
        i, j = self._i(a), self._i(b)
        c = (self.cross[i, j] - self.sums[i] * self.sums[j] / self.n) / (self.n - 1)
        return float(max(c, 0.0)) if i == j else float(c)

    def var(self, a: str) -> float:
        return self.cov(a, a)


class Estimate(BaseModel):
    """Treatment versus control on one metric: absolute and relative lift with CIs."""

    model_config = ConfigDict(extra="forbid")

    metric: str
    method: str
    n_control: int
    n_treatment: int
    control: float | None
    treatment: float | None
    diff: float | None
    diff_low: float | None
    diff_high: float | None
    lift: float | None = None
    lift_low: float | None = None
    lift_high: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    warnings: list[str] = []
    # The standard error of ``diff`` the interval was built from (CUPED's when CUPED
    # ran): what the power check uses. Not part of the published model.
    _se: float | None = PrivateAttr(default=None)

    @property
    def standard_error(self) -> float | None:
        return self._se


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _estimate(
    metric: str,
    method: str,
    c: Moments,
    t: Moments,
    mc: float,
    mt: float,
    vc: float,
    vt: float,
    df: float,
    alpha: float,
    warnings: list[str],
) -> Estimate:
    """Assemble an estimate from two independent point estimates and their variances.

    The relative lift ``mt / mc - 1`` gets Fieller's interval for the ratio of
    two independent estimates (see :func:`fieller`): unlike the delta method it
    stays honest when the treatment mean is near zero or the control mean is
    barely distinguishable from zero. Every metric estimated here (revenue,
    counts, rates) is non-negative, so the true ratio is >= 0: the interval is
    cut at 0, and no lift bound falls below -100%.
    """
    diff = mt - mc
    se = math.sqrt(vc + vt)
    if se == 0.0 or not math.isfinite(se):
        warnings.append(ZERO_VARIANCE if se == 0.0 else NOT_ESTIMABLE)
        return Estimate(
            metric=metric, method=method, n_control=c.n, n_treatment=t.n,
            control=_finite(mc), treatment=_finite(mt), diff=_finite(diff),
            diff_low=None, diff_high=None, warnings=warnings,
        )  # fmt: skip
    if math.isfinite(df):
        q, p = float(stdtrit(df, 1 - alpha / 2)), float(2 * stdtr(df, -abs(diff) / se))
    else:
        q, p = NORMAL.inv_cdf(1 - alpha / 2), 2 * NORMAL.cdf(-abs(diff) / se)
    lift = lo = hi = None
    if mc == 0.0:
        warnings.append(ZERO_BASELINE)
    else:
        lift = mt / mc - 1.0
        bounds = fieller(mc, mt, vc, vt, q)
        if bounds is None:
            warnings.append(LIFT_UNBOUNDED)
        else:
            lo, hi = max(bounds[0], 0.0) - 1.0, max(bounds[1], 0.0) - 1.0
    est = Estimate(
        metric=metric, method=method, n_control=c.n, n_treatment=t.n,
        control=mc, treatment=mt, diff=diff, diff_low=diff - q * se, diff_high=diff + q * se,
        lift=lift, lift_low=lo, lift_high=hi, p_value=p, warnings=warnings,
    )  # fmt: skip
    est._se = se
    return est


def fieller(mc: float, mt: float, vc: float, vt: float, q: float) -> tuple[float, float] | None:
    """Fieller's interval for ``θ = mt / mc`` from independent estimates.

    The set of θ with ``(mt - θ mc)² ≤ q² (vt + θ² vc)`` is the quadratic
    ``a θ² - 2 mt mc θ + (mt² - q² vt) ≤ 0`` with ``a = mc² - q² vc``. When
    ``a ≤ 0`` the control mean is not distinguishable from zero at this level
    and the set is unbounded: ``None``.
    """
    a = mc * mc - q * q * vc
    if a <= 0.0:
        return None
    half = q * math.sqrt(max(vt * a + vc * mt * mt, 0.0))
    return (mt * mc - half) / a, (mt * mc + half) / a


def _size_warnings(c: Moments, t: Moments) -> list[str] | None:
    if c.n < 2 or t.n < 2:
        return None
    return [SMALL_SAMPLE] if min(c.n, t.n) < MIN_N else []


def _not_estimable(metric: str, method: str, c: Moments, t: Moments) -> Estimate:
    return Estimate(
        metric=metric, method=method, n_control=c.n, n_treatment=t.n, control=None,
        treatment=None, diff=None, diff_low=None, diff_high=None, warnings=[NOT_ESTIMABLE],
    )  # fmt: skip


def welch(metric: str, c: Moments, t: Moments, *, alpha: float = 0.05) -> Estimate:
    """Difference in means per person with a Welch t interval.

    ``se² = s_t²/n_t + s_c²/n_c``; degrees of freedom by Welch-Satterthwaite.
    """
    warnings = _size_warnings(c, t)
    if warnings is None:
        return _not_estimable(metric, "welch", c, t)
    vc, vt = c.var(metric) / c.n, t.var(metric) / t.n
    denom = vc**2 / (c.n - 1) + vt**2 / (t.n - 1)
    df = (vc + vt) ** 2 / denom if denom > 0 else math.inf
    return _estimate(
        metric, "welch", c, t, c.mean(metric), t.mean(metric), vc, vt, df, alpha, warnings
    )


def ratio_variance(m: Moments, num: str, den: str) -> float:
    """Delta-method variance of ``mean(num) / mean(den)`` over persons.

    ``Var(R) ≈ (s_y² - 2 R s_xy + R² s_x²) / (n μ_x²)`` with ``R = μ_y / μ_x``.
    """
    mx = m.mean(den)
    if not mx:
        return math.nan
    r = m.mean(num) / mx
    v = m.var(num) - 2 * r * m.cov(num, den) + r * r * m.var(den)
    return max(v, 0.0) / (m.n * mx * mx)


def ratio(
    metric: str, num: str, den: str, c: Moments, t: Moments, *, alpha: float = 0.05
) -> Estimate:
    """A ratio metric (AOV = revenue / orders, CTR = clicks / impressions) by the delta method.

    The person is the unit of randomisation, so the ratio of per-person sums is
    not a mean of independent values: its variance comes from the delta method.
    """
    warnings = _size_warnings(c, t)
    if warnings is None or not c.sums[c._i(den)] or not t.sums[t._i(den)]:
        return _not_estimable(metric, "delta", c, t)
    rc, rt = c.mean(num) / c.mean(den), t.mean(num) / t.mean(den)
    return _estimate(
        metric, "delta", c, t, rc, rt, ratio_variance(c, num, den), ratio_variance(t, num, den),
        math.inf, alpha, warnings,
    )  # fmt: skip


def cuped(metric: str, covariate: str, c: Moments, t: Moments, *, alpha: float = 0.05) -> Estimate:
    """Difference in means adjusted by a pre-period covariate (CUPED).

    ``θ = Cov(Y, X) / Var(X)`` pooled over both arms; each arm's mean becomes
    ``ȳ - θ (x̄ - x̄_pooled)`` with variance ``(s_y² - 2θ s_xy + θ² s_x²) / n``.
    The estimate is unbiased for the same difference; its interval is narrower
    by the factor ``√(1 - ρ²)``.
    """
    warnings = _size_warnings(c, t)
    if warnings is None:
        return _not_estimable(metric, "cuped", c, t)
    pooled = c + t
    vx = pooled.var(covariate)
    if not vx:
        est = welch(metric, c, t, alpha=alpha)
        return est.model_copy(update={"warnings": [*est.warnings, NO_PRE_PERIOD]})
    theta = pooled.cov(metric, covariate) / vx
    xbar = pooled.mean(covariate)

    def adjusted(m: Moments) -> tuple[float, float]:
        mean = m.mean(metric) - theta * (m.mean(covariate) - xbar)
        var = m.var(metric) - 2 * theta * m.cov(metric, covariate) + theta**2 * m.var(covariate)
        return mean, max(var, 0.0) / m.n

    (mc, vc), (mt, vt) = adjusted(c), adjusted(t)
    return _estimate(metric, "cuped", c, t, mc, mt, vc, vt, math.inf, alpha, warnings)


def minimum_detectable_effect(
    sd: float, n_control: int, n_treatment: int, *, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Smallest absolute difference a two-sided test detects with ``power``.

    ``MDE = (z_{1-alpha/2} + z_{power}) · sd · √(1/n_c + 1/n_t)``.
    """
    if n_control < 1 or n_treatment < 1:
        return math.inf
    z = NORMAL.inv_cdf(1 - alpha / 2) + NORMAL.inv_cdf(power)
    return z * sd * math.sqrt(1 / n_control + 1 / n_treatment)


def check_power(
    est: Estimate, target_mde: float, *, alpha: float = 0.05, power: float = 0.8
) -> Estimate:
    """Add ``LOW_POWER`` when the estimate cannot detect a relative effect of ``target_mde``.

    The minimum detectable effect is ``(z_{1-alpha/2} + z_{power}) · se / |control|``
    with the standard error the estimate's own interval was built from: the
    delta method's for a ratio metric (CTR, AOV), CUPED's when CUPED ran. An
    estimate without a standard error (too few persons, no variation) or without
    a control mean to be relative to is always low-powered.
    """
    se = est.standard_error
    if se is None or not est.control:
        mde = math.inf
    else:
        z = NORMAL.inv_cdf(1 - alpha / 2) + NORMAL.inv_cdf(power)
        mde = z * se / abs(est.control)
    if mde > target_mde and LOW_POWER not in est.warnings:
        return est.model_copy(update={"warnings": [*est.warnings, LOW_POWER]})
    return est


def persons_per_arm(
    baseline_rate: float, relative_mde: float, *, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Persons per arm a two-sided two-proportion z-test needs to detect a relative
    change of ``relative_mde`` on ``baseline_rate`` with ``power`` at ``alpha``.

    ``n = (z_{1-alpha/2}·√(2·p̄(1-p̄)) + z_{power}·√(p₁(1-p₁) + p₂(1-p₂)))² / (p₂ - p₁)²``
    with ``p₂ = p₁·(1 + mde)`` and ``p̄ = (p₁ + p₂)/2`` (equal arms, no continuity
    correction), rounded up. ``p₂`` is capped just below 1.
    """
    p1 = baseline_rate
    p2 = min(p1 * (1 + relative_mde), 1 - 1e-9)
    if not 0 < p1 < 1 or p2 <= p1:
        raise ValueError("baseline_rate must be in (0, 1) and leave room for the effect")
    pbar = (p1 + p2) / 2
    a = NORMAL.inv_cdf(1 - alpha / 2) * math.sqrt(2 * pbar * (1 - pbar))
    b = NORMAL.inv_cdf(power) * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return math.ceil((a + b) ** 2 / (p2 - p1) ** 2)
