"""Validity and decision checks: sample ratio, multiple testing, guardrails,
power before launch, incrementality and net value. Pure functions, warning codes."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict
from scipy.special import chdtrc

from shelfwise.experiments.stats import (
    NORMAL,
    NOT_ESTIMABLE,
    Estimate,
    Moments,
    minimum_detectable_effect,
)

SRM_DETECTED = "SRM_DETECTED"
GUARDRAIL_FAILED = "GUARDRAIL_FAILED"
NO_ATTRIBUTED = "NO_ATTRIBUTED"
SRM_ALPHA = 0.001
# Below this many expected persons in some arm the chi-square approximation does not
# hold (Cochran's rule) and the check says "not enough data" instead of "OK".
SRM_MIN_EXPECTED = 5.0


class SrmResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    counts: dict[str, int]
    expected_shares: dict[str, float]
    chi2: float
    p_value: float
    valid: bool
    status: Literal["ok", "mismatch", "not_enough_data"] = "not_enough_data"
    min_expected: float = SRM_MIN_EXPECTED
    warnings: list[str] = []


def sample_ratio(
    counts: Mapping[str, int], shares: Mapping[str, float], *, alpha: float = SRM_ALPHA
) -> SrmResult:
    """Pearson chi-square of observed arm sizes against the configured shares.

    A p-value below ``alpha`` (0.001 by default: the check runs on every
    readout) means assignment or logging is broken; every estimate of the
    experiment is then marked invalid with ``SRM_DETECTED``. While some arm
    expects fewer than ``SRM_MIN_EXPECTED`` persons the check has no verdict:
    ``status`` is ``not_enough_data`` (and ``valid`` stays true: nothing detected).
    """
    total = sum(counts.get(a, 0) for a in shares)
    if total == 0 or min(total * s for s in shares.values() if s > 0) < SRM_MIN_EXPECTED:
        return SrmResult(
            counts={a: counts.get(a, 0) for a in shares}, expected_shares=dict(shares),
            chi2=0.0, p_value=1.0, valid=True, status="not_enough_data",
        )  # fmt: skip
    chi2 = sum(
        (counts.get(a, 0) - total * s) ** 2 / (total * s) for a, s in shares.items() if s > 0
    )
    p = float(chdtrc(max(len(shares) - 1, 1), chi2))
    bad = p < alpha
    return SrmResult(
        counts={a: counts.get(a, 0) for a in shares},
        expected_shares=dict(shares),
        chi2=chi2,
        p_value=p,
        valid=not bad,
        status="mismatch" if bad else "ok",
        warnings=[SRM_DETECTED] if bad else [],
    )


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm step-down adjusted p-values (family-wise error ≤ alpha); None stays None."""
    present = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(present)
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(present):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


class GuardrailResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str
    margin: float
    lift_bound: float | None
    passed: bool
    warnings: list[str] = []


def non_inferiority(
    est: Estimate,
    margin: float,
    *,
    lower_is_better: bool = False,
    alpha: float = 0.05,
    ci_alpha: float = 0.05,
) -> GuardrailResult:
    """Treatment is not worse than control by more than ``margin`` (relative).

    One-sided test at ``alpha``: passes when the one-sided bound of the relative
    lift clears ``-margin`` (``+margin`` for a metric where lower is better).
    The bound is recovered from the two-sided ``1 - 2alpha`` interval's width.
    """
    if est.lift is None or est.lift_low is None or est.lift_high is None:
        return GuardrailResult(
            metric=est.metric, margin=margin, lift_bound=None, passed=False,
            warnings=[NOT_ESTIMABLE, GUARDRAIL_FAILED],
        )  # fmt: skip
    # The estimate's interval is two-sided at ``ci_alpha``; rescale to one-sided ``alpha``.
    half = (est.lift_high - est.lift_low) / 2
    z_two = NORMAL.inv_cdf(1 - ci_alpha / 2)
    se = half / z_two if half > 0 else 0.0
    z_one = NORMAL.inv_cdf(1 - alpha)
    if lower_is_better:
        bound = est.lift + z_one * se
        passed = bound < margin
    else:
        bound = est.lift - z_one * se
        passed = bound > -margin
    return GuardrailResult(
        metric=est.metric, margin=margin, lift_bound=bound, passed=passed,
        warnings=[] if passed else [GUARDRAIL_FAILED],
    )  # fmt: skip


class PowerPlan(BaseModel):
    """What a launch can detect: absolute and relative MDE for a given sample."""

    model_config = ConfigDict(extra="forbid")

    n_per_arm: dict[str, int]
    mde_absolute: float
    mde_relative: float | None
    persons_needed_per_arm: int | None


def power_plan(
    baseline_mean: float,
    baseline_sd: float,
    persons: int,
    shares: Mapping[str, float],
    control: str,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    target_mde: float | None = None,
) -> PowerPlan:
    """MDE of the smallest treatment arm against ``control`` before launch, and the
    persons per arm a ``target_mde`` (relative) needs with equal arms."""
    n = {a: int(persons * s) for a, s in shares.items()}
    others = [a for a in n if a != control] or [control]
    n_t = min(n[a] for a in others)
    mde = minimum_detectable_effect(baseline_sd, n[control], n_t, alpha=alpha, power=power)
    needed = None
    if target_mde and baseline_mean:
        z = NORMAL.inv_cdf(1 - alpha / 2) + NORMAL.inv_cdf(power)
        needed = math.ceil(2 * (z * baseline_sd / (target_mde * abs(baseline_mean))) ** 2)
    return PowerPlan(
        n_per_arm=n,
        mde_absolute=mde,
        mde_relative=mde / abs(baseline_mean) if baseline_mean else None,
        persons_needed_per_arm=needed,
    )


class Incrementality(BaseModel):
    """Share of recommendation-attributed purchases that would not have happened anyway."""

    model_config = ConfigDict(extra="forbid")

    value: float | None
    low: float | None
    high: float | None
    purchases_treatment: float | None
    purchases_holdout: float | None
    attributed_treatment: float | None
    warnings: list[str] = []


def incrementality(
    purchases: str, attributed: str, t: Moments, h: Moments, *, alpha: float = 0.05
) -> Incrementality:
    """``I = (p̄_T - p̄_H) / ā_T`` with a delta-method interval.

    ``p`` is purchases per person, ``a`` attributed purchases per person; the
    treatment means are correlated, the holdout is independent:
    ``Var(I) ≈ (V(p̄_T) + V(p̄_H)) / ā² + (p̄_T - p̄_H)² V(ā) / ā⁴
    - 2 (p̄_T - p̄_H) C(p̄_T, ā) / ā³``.
    """
    if t.n < 2 or h.n < 2:
        return Incrementality(
            value=None, low=None, high=None, purchases_treatment=None, purchases_holdout=None,
            attributed_treatment=None, warnings=[NOT_ESTIMABLE],
        )  # fmt: skip
    pt, ph, a = t.mean(purchases), h.mean(purchases), t.mean(attributed)
    if a == 0:
        return Incrementality(
            value=None, low=None, high=None, purchases_treatment=pt, purchases_holdout=ph,
            attributed_treatment=a, warnings=[NO_ATTRIBUTED],
        )  # fmt: skip
    d = pt - ph
    v = (
        (t.var(purchases) / t.n + h.var(purchases) / h.n) / a**2
        + d**2 * (t.var(attributed) / t.n) / a**4
        - 2 * d * (t.cov(purchases, attributed) / t.n) / a**3
    )
    q = NORMAL.inv_cdf(1 - alpha / 2)
    se = math.sqrt(max(v, 0.0))
    return Incrementality(
        value=d / a, low=d / a - q * se, high=d / a + q * se, purchases_treatment=pt,
        purchases_holdout=ph, attributed_treatment=a,
    )  # fmt: skip


class NetValue(BaseModel):
    """Incremental revenue over the treated persons minus what the module costs to run."""

    model_config = ConfigDict(extra="forbid")

    incremental_revenue: float | None
    incremental_revenue_low: float | None
    incremental_revenue_high: float | None
    operating_cost: float
    net_value: float | None
    net_value_low: float | None
    net_value_high: float | None


def net_value(revenue_per_person: Estimate, treated_persons: int, cost: float) -> NetValue:
    """``(r̄_T - r̄_C) · n_T - cost``, its interval scaled from the difference's interval."""

    def scale(x: float | None) -> float | None:
        return None if x is None else x * treated_persons

    inc, lo, hi = (
        scale(revenue_per_person.diff),
        scale(revenue_per_person.diff_low),
        scale(revenue_per_person.diff_high),
    )
    return NetValue(
        incremental_revenue=inc, incremental_revenue_low=lo, incremental_revenue_high=hi,
        operating_cost=cost,
        net_value=None if inc is None else inc - cost,
        net_value_low=None if lo is None else lo - cost,
        net_value_high=None if hi is None else hi - cost,
    )  # fmt: skip
