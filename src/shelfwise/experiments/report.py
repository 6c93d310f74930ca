"""The readout of one experiment: per arm, per placement, per category.

Built from :mod:`.attribution` (one scan of the store) and the pure functions
of :mod:`.stats` and :mod:`.checks`. Nothing raises on thin data: estimates
carry warning codes and the report says whether it is ``valid``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import numpy as np
from pydantic import BaseModel, ConfigDict

from shelfwise.experiments.assignment import Resolver, default_resolve
from shelfwise.experiments.attribution import ALL, METRICS, ExperimentData, load
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
from shelfwise.experiments.model import LOWER_IS_BETTER, Experiment
from shelfwise.experiments.stats import Estimate, Moments, check_power, cuped, ratio, welch
from shelfwise.store.engine import Database
from shelfwise.store.types import utcnow

MULTIPLE_ARMS = "MULTIPLE_ARMS"
NO_EXPOSURES = "NO_EXPOSURES"


class ArmSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    arm: str
    persons: int
    impressions: float
    ctr: float | None
    add_to_cart_rate: float | None
    conversion: float | None
    revenue_per_person: float | None
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


class Report(BaseModel):
    model_config = ConfigDict(extra="forbid")

    experiment_id: str
    version: int
    fingerprint: str
    primary_metric: str
    window_start: datetime
    window_end: datetime
    generated_at: datetime
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


def build(e: Experiment, data: ExperimentData, *, start: datetime, end: datetime) -> Report:
    s = e.spec
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
        generated_at=utcnow(), valid=srm.valid, warnings=warnings, srm=srm,
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
) -> Report:
    """Read the experiment out of the store as of ``at`` (default: now)."""
    now = at or utcnow()
    end = min(e.spec.end, now) if e.spec.end else now
    data = load(db, e, end=end, resolve=resolve)
    return build(e, data, start=e.spec.start, end=end)


__all__ = ["ALL", "Report", "build", "compare", "readout"]
