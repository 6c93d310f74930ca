"""The readout of one experiment: per arm, per placement, per category.

Built from :mod:`.attribution` (one scan of the store) and the pure functions
of :mod:`.stats` and :mod:`.checks`. Nothing raises on thin data: estimates
carry warning codes. The report's ``status`` is ``collecting_data`` until every
arm has the plan's minimum persons (:func:`minimum_per_arm`) and the sample-ratio
check has enough data, ``invalid`` on a sample-ratio mismatch, else ``ready``;
``valid`` only says that no mismatch was detected.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from shelfwise.experiments.assignment import Resolver, default_resolve
from shelfwise.experiments.attribution import ALL, METRICS, ExperimentData, load, window_hours
from shelfwise.experiments.checks import (
    SRM_DETECTED,
    GuardrailResult,
    Incrementality,
    NetValue,
    SrmResult,
    holm,
    incrementality,
    net_value,
    non_inferiority,
    sample_ratio,
)
from shelfwise.experiments.model import LOWER_IS_BETTER, Experiment, ExperimentSpec
from shelfwise.experiments.stats import (
    MIN_N,
    Estimate,
    Moments,
    check_power,
    cuped,
    persons_per_arm,
    ratio,
    welch,
)
from shelfwise.monitoring.attribution import DEFAULT_WINDOW_HOURS, definition
from shelfwise.store.engine import Database
from shelfwise.store.types import utcnow

MULTIPLE_ARMS = "MULTIPLE_ARMS"
NO_EXPOSURES = "NO_EXPOSURES"
# Persons per arm before a readout is "ready" when the spec sets neither
# min_persons_per_arm nor baseline_rate.
DEFAULT_MIN_PERSONS_PER_ARM = 100
ReadoutStatus = Literal["collecting_data", "ready", "invalid"]


class ArmSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    arm: str
    persons: int
    impressions: float
    ctr: float | None
    add_to_cart_rate: float | None
    conversion: float | None
    revenue_per_person: float | None
    recommendation_revenue: float  # Σ revenue from recommendations (see Report.attribution)
    aov: float | None
    repeat_purchase_rate: float | None
    oos_share: float | None
    return_rate: float | None


class Comparison(BaseModel):
    model_config = ConfigDict(extra="forbid")

    arm: str
    control: str
    estimates: dict[str, Estimate]
    incrementality: Incrementality | None = None


class Cell(BaseModel):
    model_config = ConfigDict(extra="forbid")

    placement: str
    category: str
    arms: list[ArmSummary]
    comparisons: list[Comparison]


class SegmentEstimate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    segment: str
    value: str
    arm: str
    estimate: Estimate


class SampleProgress(BaseModel):
    """How far the experiment is from the sample its plan needs."""

    model_config = ConfigDict(extra="forbid")

    persons_per_arm: dict[str, int]
    min_persons_per_arm: int
    min_source: Literal["configured", "plan", "default"]
    daily_persons_per_arm: dict[str, float]
    expected_date: datetime | None


def minimum_per_arm(s: ExperimentSpec) -> tuple[int, Literal["configured", "plan", "default"]]:
    """The persons each arm needs before the readout says anything, and where that
    number comes from: the spec's ``min_persons_per_arm``; else the two-proportion
    sample size for ``target_mde`` on ``baseline_rate`` at ``alpha`` and ``power``;
    else ``DEFAULT_MIN_PERSONS_PER_ARM``. Never below ``stats.MIN_N``."""
    if s.min_persons_per_arm is not None:
        return max(s.min_persons_per_arm, MIN_N), "configured"
    if s.baseline_rate is not None:
        n = persons_per_arm(s.baseline_rate, s.target_mde, alpha=s.alpha, power=s.power)
        return max(n, MIN_N), "plan"
    return DEFAULT_MIN_PERSONS_PER_ARM, "default"


def progress(
    s: ExperimentSpec, counts: dict[str, int], *, start: datetime, end: datetime
) -> SampleProgress:
    """Persons per arm against the minimum, and the date every arm reaches it at the
    enrolment rate seen so far (persons per day since ``start``); ``None`` while
    some short arm has enrolled nobody (no rate to extrapolate)."""
    need, source = minimum_per_arm(s)
    days = (end - start).total_seconds() / 86_400
    rates = {a: (n / days if days > 0 else 0.0) for a, n in counts.items()}
    left = [(need - counts[a]) / rates[a] if rates[a] else None for a in counts if counts[a] < need]
    if not left:
        expected: datetime | None = end
    elif any(x is None for x in left):
        expected = None
    else:
        expected = end + timedelta(days=max(x for x in left if x is not None))
    return SampleProgress(
        persons_per_arm=dict(counts), min_persons_per_arm=need, min_source=source,
        daily_persons_per_arm=rates, expected_date=expected,
    )  # fmt: skip


def readout_status(srm: SrmResult, sample: SampleProgress) -> ReadoutStatus:
    """``invalid`` on a sample-ratio mismatch; ``ready`` once every arm has its minimum
    and the sample-ratio check has enough data to say OK; else ``collecting_data``."""
    if not srm.valid:
        return "invalid"
    least = min(sample.persons_per_arm.values(), default=0)
    if least >= sample.min_persons_per_arm and srm.status == "ok":
        return "ready"
    return "collecting_data"


class Report(BaseModel):
    model_config = ConfigDict(extra="forbid")

    experiment_id: str
    version: int
    fingerprint: str
    primary_metric: str
    window_start: datetime
    window_end: datetime
    attribution_window_hours: float
    attribution: str  # the definition of recommendation_revenue and attributed lines
    generated_at: datetime
    status: ReadoutStatus
    sample: SampleProgress
    valid: bool
    warnings: list[str]
    srm: SrmResult
    persons_in_several_arms: int
    cells: list[Cell]
    guardrails: dict[str, list[GuardrailResult]]
    net_value: dict[str, NetValue]
    segments: list[SegmentEstimate]


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den else None


def _summary(arm: str, m: Moments) -> ArmSummary:
    s = dict(zip(METRICS, m.sums.tolist(), strict=True))
    return ArmSummary(
        arm=arm,
        persons=m.n,
        impressions=s["impressions"],
        ctr=_ratio(s["clicks"], s["impressions"]),
        add_to_cart_rate=_ratio(s["add_to_carts"], s["impressions"]),
        conversion=_ratio(s["converted"], m.n),
        revenue_per_person=_ratio(s["revenue"], m.n),
        recommendation_revenue=round(s["attributed_revenue"], 2),
        aov=_ratio(s["revenue"], s["orders"]),
        repeat_purchase_rate=_ratio(s["repeat"], s["converted"]),
        oos_share=_ratio(s["oos_shown"], s["impressions"]),
        return_rate=_ratio(s["returned"], s["revenue"]),
    )


def compare(e: Experiment, c: Moments, t: Moments, *, use_cuped: bool) -> dict[str, Estimate]:
    """Every declared metric, treatment ``t`` against control ``c``."""
    a = e.spec.alpha
    revenue = (
        cuped("revenue", "pre_revenue", c, t, alpha=a)
        if use_cuped
        else welch("revenue", c, t, alpha=a)
    )
    out = {
        "revenue_per_person": revenue.model_copy(update={"metric": "revenue_per_person"}),
        "purchases_per_person": welch("purchases", c, t, alpha=a),
        "conversion": welch("converted", c, t, alpha=a),
        "aov": ratio("aov", "revenue", "orders", c, t, alpha=a),
        "ctr": ratio("ctr", "clicks", "impressions", c, t, alpha=a),
        "add_to_cart_rate": ratio("add_to_cart_rate", "add_to_carts", "impressions", c, t, alpha=a),
        "repeat_purchase_rate": ratio("repeat_purchase_rate", "repeat", "converted", c, t, alpha=a),
        "return_rate": ratio("return_rate", "returned", "revenue", c, t, alpha=a),
    }
    primary = e.spec.primary_metric
    out[primary] = check_power(out[primary], e.spec.target_mde, alpha=a)
    return out


def _moments(data: ExperimentData, rows: np.ndarray, pl: int, cat: int) -> Moments:
    return Moments.of(METRICS, data.values[rows, pl, cat, :])


def build(
    e: Experiment,
    data: ExperimentData,
    *,
    start: datetime,
    end: datetime,
    attribution_window_hours: float = DEFAULT_WINDOW_HOURS,
) -> Report:
    s = e.spec
    hours = window_hours(e, attribution_window_hours)
    arms = [a.name for a in s.arms]
    control = s.control_arm
    treatments = [a for a in arms if a != control]
    holdouts = [a.name for a in s.arms if a.holdout]
    use_cuped = s.pre_period_days > 0
    warnings: list[str] = []
    counts = {a: int((data.arms == a).sum()) for a in arms}
    srm = sample_ratio(counts, {a.name: a.share for a in s.arms})
    if not data.persons:
        warnings.append(NO_EXPOSURES)
    if data.conflicts:
        warnings.append(MULTIPLE_ARMS)
    warnings.extend(srm.warnings)

    cells: list[Cell] = []
    for pl, placement in enumerate(data.placements):
        for cat, category in enumerate(data.categories):
            if pl and cat:
                continue  # placement x category cross cells would be too thin to read
            if pl and s.population == "active":
                continue  # unexposed persons have no placement: those cells would be biased
            rows = {a: np.flatnonzero((data.arms == a) & data.exposed[:, pl]) for a in arms}
            m = {a: _moments(data, rows[a], pl, cat) for a in arms}
            comparisons = []
            for t in treatments:
                inc = None
                if holdouts and t not in holdouts:
                    inc = incrementality(
                        "purchases", "attributed", m[t], m[holdouts[0]], alpha=s.alpha
                    )
                comparisons.append(
                    Comparison(
                        arm=t, control=control,
                        estimates=compare(e, m[control], m[t], use_cuped=use_cuped),
                        incrementality=inc,
                    )
                )  # fmt: skip
            cells.append(
                Cell(
                    placement=placement, category=category,
                    arms=[_summary(a, m[a]) for a in arms], comparisons=comparisons,
                )
            )  # fmt: skip
    _adjust_primary(cells, s.primary_metric)
    if not srm.valid:
        _mark_invalid(cells)

    sample = progress(s, counts, start=start, end=end)
    status = readout_status(srm, sample)
    overall = cells[0]
    days = max((end - start).total_seconds() / 86_400, 0.0)
    daily_cost = sum(s.operating_cost_per_day.values())
    arm_share = {a.name: a.share * s.traffic for a in s.arms}
    guardrails: dict[str, list[GuardrailResult]] = {}
    values: dict[str, NetValue] = {}
    for comp in overall.comparisons:
        guardrails[comp.arm] = [
            non_inferiority(
                comp.estimates[g.metric], g.margin, lower_is_better=g.metric in LOWER_IS_BETTER,
                alpha=s.alpha, ci_alpha=s.alpha,
            )
            for g in s.guardrails
        ]  # fmt: skip
        cost = daily_cost * days * arm_share[comp.arm]
        values[comp.arm] = net_value(comp.estimates["revenue_per_person"], counts[comp.arm], cost)
    return Report(
        experiment_id=e.experiment_id, version=e.version, fingerprint=s.fingerprint(),
        primary_metric=s.primary_metric, window_start=start, window_end=end,
        attribution_window_hours=hours, attribution=definition(hours),
        generated_at=utcnow(), status=status, sample=sample, valid=srm.valid, warnings=warnings, srm=srm,
        persons_in_several_arms=data.conflicts, cells=cells, guardrails=guardrails,
        net_value=values, segments=_segments(e, data, use_cuped),
    )  # fmt: skip


def _adjust_primary(cells: list[Cell], primary: str) -> None:
    """Holm across placements x categories, per treatment arm, on the primary metric."""
    arms = {c.arm for cell in cells for c in cell.comparisons}
    for arm in arms:
        found = [
            (cell_i, comp_i)
            for cell_i, cell in enumerate(cells)
            for comp_i, comp in enumerate(cell.comparisons)
            if comp.arm == arm
        ]
        ests = [cells[i].comparisons[j].estimates[primary] for i, j in found]
        for (i, j), p in zip(found, holm([x.p_value for x in ests]), strict=True):
            est = cells[i].comparisons[j].estimates[primary]
            cells[i].comparisons[j].estimates[primary] = est.model_copy(update={"p_adjusted": p})


def _mark_invalid(cells: list[Cell]) -> None:
    for cell in cells:
        for comp in cell.comparisons:
            for k, est in comp.estimates.items():
                comp.estimates[k] = est.model_copy(
                    update={"warnings": [*est.warnings, SRM_DETECTED]}
                )


def _segments(e: Experiment, data: ExperimentData, use_cuped: bool) -> list[SegmentEstimate]:
    s = e.spec
    out: list[SegmentEstimate] = []
    splits: dict[str, Callable[[int], str]] = {
        "platform": lambda i: data.platforms[i] or "unknown",
        "known_customer": lambda i: "yes" if data.known[i] else "no",
    }
    for seg in s.segments:
        labels = np.array([splits[seg](i) for i in range(len(data.persons))], dtype=object)
        for value in sorted(set(labels.tolist())):
            c_rows = np.flatnonzero((labels == value) & (data.arms == s.control_arm))
            for arm in (a.name for a in s.arms if a.name != s.control_arm):
                t_rows = np.flatnonzero((labels == value) & (data.arms == arm))
                est = compare(
                    e,
                    _moments(data, c_rows, 0, 0),
                    _moments(data, t_rows, 0, 0),
                    use_cuped=use_cuped,
                )[s.primary_metric]
                out.append(SegmentEstimate(segment=seg, value=value, arm=arm, estimate=est))
    return out


def readout(
    db: Database,
    e: Experiment,
    *,
    at: datetime | None = None,
    resolve: Resolver = default_resolve,
    attribution_window_hours: float = DEFAULT_WINDOW_HOURS,
) -> Report:
    """Read the experiment out of the store as of ``at`` (default: now); revenue from
    recommendations within the spec's window, else ``attribution_window_hours`` (the
    store's setting)."""
    now = at or utcnow()
    end = min(e.spec.end, now) if e.spec.end else now
    hours = attribution_window_hours
    data = load(db, e, end=end, resolve=resolve, attribution_window_hours=hours)
    return build(e, data, start=e.spec.start, end=end, attribution_window_hours=hours)


__all__ = [
    "ALL",
    "Report",
    "SampleProgress",
    "build",
    "compare",
    "minimum_per_arm",
    "progress",
    "readout",
    "readout_status",
]
