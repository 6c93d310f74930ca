"""Experiments: the list, and one readout per arm, placement and category with its
lifts and confidence intervals, sample-ratio check, guardrails and incrementality."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

import plotly.graph_objects as go

from shelfwise.dashboard import charts
from shelfwise.dashboard.format import label, money, percent, placement_label, when
from shelfwise.dashboard.panels.cells import badge, count_cell, interval, money_cell, percent_cell
from shelfwise.dashboard.slots import Cell, Panel, PanelCell, PanelTable, SlotParams, Tone
from shelfwise.experiments import Experiment
from shelfwise.experiments.assignment import graph_resolve
from shelfwise.experiments.model import LOWER_IS_BETTER
from shelfwise.experiments.report import Report, readout
from shelfwise.experiments.stats import Estimate
from shelfwise.monitoring.attribution import window_label
from shelfwise.store.types import utcnow

if TYPE_CHECKING:
    from shelfwise.runtime import Runtime

METRIC_NAMES = {
    "revenue_per_person": "Revenue per person",
    "purchases_per_person": "Purchases per person",
    "conversion": "Conversion",
    "aov": "Average order value",
    "ctr": "Click-through rate",
    "add_to_cart_rate": "Add-to-cart rate",
    "repeat_purchase_rate": "Repeat-purchase rate",
    "return_rate": "Return rate",
}
# Besides the primary metric, what the per-placement and per-category rows show.
DETAIL = ("ctr", "conversion")
MONEY = frozenset({"revenue_per_person", "aov"})
COUNTS = frozenset({"purchases_per_person"})


def _value(metric: str, v: float | None, currency: str) -> str:
    if metric in MONEY:
        return money(v, currency)
    if metric in COUNTS:
        return "n/a" if v is None else f"{v:.3f}"
    return percent(v)


def _where(placement: str, category: str) -> str:
    p = placement_label(placement)
    c = "all categories" if category == "all" else label(category)
    return f"{p} · {c}"


def experiments_panel(runtime: Runtime, params: SlotParams) -> Panel:
    items = runtime.experiments.list(None)
    wanted = params.query.get("experiment")
    chosen = next((e for e in items if e.experiment_id == wanted), None)
    if chosen is None and not wanted:
        now = utcnow()
        chosen = next((e for e in items if e.active_at(now)), items[0] if items else None)
    listing = PanelTable(
        "Experiments",
        ["Experiment", "Name", "Placement", "Arms", "Primary metric", "Start", "End", "Status"],
        [_listed(e, params) for e in items],
        testid="experiments",
        empty="No experiments yet: create one with POST /v1/experiments or `shelfwise experiments`.",
    )
    if chosen is None:
        error = f"No experiment {wanted!r}." if wanted else ""
        return Panel("Experiments", tables=[listing], error=error, ranged=False)
    report = readout(
        runtime.db,
        chosen,
        resolve=graph_resolve(runtime.identity.snapshot()),
        attribution_window_hours=runtime.settings.attribution_window_hours,
    )
    return _readout_panel(chosen, report, listing, runtime.settings.currency)


def _listed(e: Experiment, params: SlotParams) -> list[Cell]:
    s = e.spec
    href = "?" + urlencode({"experiment": e.experiment_id})
    tone: Tone = "ok" if e.status == "running" else "resolved"
    return [
        PanelCell(e.experiment_id, href=href),
        s.name,
        placement_label(s.placement),
        " · ".join(f"{a.name} {a.share:.0%}" + (" (holdout)" if a.holdout else "") for a in s.arms),
        METRIC_NAMES[s.primary_metric],
        when(s.start),
        when(s.end),
        badge(e.status.title(), tone),
    ]


def _lift_cells(metric: str, est: Estimate, currency: str, testid: str) -> list[Cell]:
    return [
        _value(metric, est.control, currency),
        _value(metric, est.treatment, currency),
        PanelCell("n/a" if est.lift is None else f"{est.lift:+.2%}", value=est.lift, testid=testid),
        interval(est.lift_low, est.lift_high),
        "n/a"
        if est.p_adjusted is None and est.p_value is None
        else f"{est.p_adjusted or est.p_value:.3g}",
        ", ".join(est.warnings),
    ]


def collecting(r: Report) -> str:
    """``collecting data: 3 vs 0 persons of 100 per arm, expected by 12 Jan 2027`` while
    the readout is ``collecting_data`` (an arm is below the plan's minimum, or the
    sample-ratio check has not enough data); "" once it is not."""
    if r.status != "collecting_data":
        return ""
    p = r.sample
    seen = " vs ".join(f"{n:,}" for n in p.persons_per_arm.values()) or "0"
    due = (
        f"expected by {when(p.expected_date)}"
        if p.expected_date is not None
        else "no expected date until every arm has enrolled someone"
    )
    return f"collecting data: {seen} persons of {p.min_persons_per_arm:,} per arm, {due}"


def _verdicts(r: Report, early: str) -> tuple[PanelCell, PanelCell, str]:
    """(readout badge, sample-ratio badge, the summary's words). A detected mismatch
    is always shown; "valid" and "OK" only once the sample can support them."""
    if not r.srm.valid:
        return (
            badge("Invalid", "page", "validity"),
            badge("Mismatch", "page", "srm-status"),
            "NOT VALID (sample-ratio mismatch)",
        )
    srm = (
        badge("Not enough data", "resolved", "srm-status")
        if r.srm.status == "not_enough_data"
        else badge("OK", "ok", "srm-status")
    )
    if early:
        return badge("Collecting data", "resolved", "validity"), srm, early
    return badge("Valid", "ok", "validity"), srm, "valid"


def _readout_panel(e: Experiment, r: Report, listing: PanelTable, currency: str) -> Panel:
    primary = r.primary_metric
    early = collecting(r)
    validity, srm_status, status = _verdicts(r, early)
    p = r.sample
    sample = PanelCell(
        " vs ".join(f"{n:,}" for n in p.persons_per_arm.values())
        + f" / {p.min_persons_per_arm:,} ({p.min_source})",
        testid="sample",
    )
    reached = min(p.persons_per_arm.values(), default=0) >= p.min_persons_per_arm
    due = PanelCell(
        "reached"
        if reached
        else "n/a (an arm has no enrolment yet)"
        if p.expected_date is None
        else f"expected {when(p.expected_date)}",
        testid="expected-date",
    )
    total = sum(r.srm.counts.values()) or 1
    srm_rows: list[list[Cell]] = [
        [
            arm,
            count_cell(n, f"srm-{arm}"),
            percent(n / total, 1),
            percent(r.srm.expected_shares.get(arm), 1),
        ]
        for arm, n in r.srm.counts.items()
    ]
    lifts: list[list[Cell]] = []
    arm_rows: list[list[Cell]] = []
    incr: list[list[Cell]] = []
    for cell in r.cells:
        where = _where(cell.placement, cell.category)
        key = f"{cell.placement}-{cell.category}"
        for a in cell.arms:
            arm_rows.append(
                [
                    where,
                    a.arm,
                    count_cell(a.persons, f"persons-{key}-{a.arm}"),
                    count_cell(a.impressions),
                    percent_cell(a.ctr),
                    percent_cell(a.add_to_cart_rate),
                    percent_cell(a.conversion),
                    money_cell(a.revenue_per_person, currency, f"rpp-{key}-{a.arm}"),
                    money_cell(a.recommendation_revenue, currency, f"recrev-{key}-{a.arm}"),
                    money_cell(a.aov, currency),
                ]
            )
        overall = cell.placement == cell.category == "all"
        for comp in cell.comparisons:
            for metric, est in comp.estimates.items():
                if not overall and metric not in (primary, *DETAIL):
                    continue
                testid = f"lift-{key}-{comp.arm}-{metric}"
                arms = f"{comp.arm} vs {comp.control}"
                name = METRIC_NAMES.get(metric, metric)
                lifts.append([where, arms, name, *_lift_cells(metric, est, currency, testid)])
            inc = comp.incrementality
            if inc is not None:
                incr.append(
                    [
                        where,
                        comp.arm,
                        PanelCell(percent(inc.value, 1), value=inc.value, testid=f"incr-{key}"),
                        interval(inc.low, inc.high, "{:.1%}"),
                        "n/a"
                        if inc.purchases_treatment is None
                        else f"{inc.purchases_treatment:.3f}",
                        "n/a" if inc.purchases_holdout is None else f"{inc.purchases_holdout:.3f}",
                        ", ".join(inc.warnings),
                    ]
                )
    guard_rows: list[list[Cell]] = [
        [
            arm,
            METRIC_NAMES.get(g.metric, g.metric),
            ("at most +" if g.metric in LOWER_IS_BETTER else "at most -") + percent(g.margin, 1),
            "n/a" if g.lift_bound is None else f"{g.lift_bound:+.2%}",
            badge("Passed" if g.passed else "Failed", "ok" if g.passed else "page"),
        ]
        for arm, results in r.guardrails.items()
        for g in results
    ]
    value_rows: list[list[Cell]] = [
        [
            arm,
            money_cell(v.incremental_revenue, currency, f"incremental-{arm}"),
            interval(v.incremental_revenue_low, v.incremental_revenue_high, "{:,.0f}"),
            money(v.operating_cost, currency),
            money_cell(v.net_value, currency, f"net-{arm}"),
            interval(v.net_value_low, v.net_value_high, "{:,.0f}"),
        ]
        for arm, v in r.net_value.items()
    ]
    chart = None if early else _lift_chart(r)
    summary = (
        f"{e.spec.name}: readout from {when(r.window_start)} to {when(r.window_end)}, "
        f"primary metric {METRIC_NAMES[primary].lower()}; the readout is {status}."
        + (f" Warnings: {', '.join(r.warnings)}." if r.warnings else "")
        + " Lifts are relative to the control arm with confidence intervals; p-values of the"
        " primary metric are Holm-adjusted across placements and categories."
    )
    return Panel(
        title=f"Experiment {e.experiment_id}",
        summary=summary,
        ranged=False,
        figures=[chart] if chart else [],
        tables=[
            listing,
            PanelTable(
                "Sample-ratio check",
                ["Arm", "Persons", "Observed share", "Configured share"],
                srm_rows,
                note=f"χ² = {r.srm.chi2:.2f}, p = {r.srm.p_value:.3g}."
                if r.srm.status != "not_enough_data"
                else f"Not enough data: the check needs at least {r.srm.min_expected:g}"
                " expected persons in every arm.",
                testid="srm",
            ),
            PanelTable(
                "Status",
                ["Readout", "Sample ratio", "Persons per arm / minimum", "Minimum reached"],
                [[validity, srm_status, sample, due]],
                note=early.capitalize() + "." if early else "",
            ),
            PanelTable(
                "Arms",
                [
                    "Where",
                    "Arm",
                    "Persons",
                    "Items shown",
                    "CTR",
                    "Add-to-cart rate",
                    "Conversion",
                    "Revenue per person (all orders)",
                    f"Revenue from recommendations ({window_label(r.attribution_window_hours)})",
                    "Average order",
                ],
                arm_rows,
                note=r.attribution + " Revenue per person counts every order line of the"
                " arm's persons: what the lifts compare.",
                testid="arms",
            ),
            PanelTable(
                "Lifts",
                [
                    "Where",
                    "Arms",
                    "Metric",
                    "Control",
                    "Treatment",
                    "Lift",
                    "95% CI",
                    "p",
                    "Warnings",
                ],
                lifts,
                note="Every metric for the whole experiment; per placement and category the"
                " primary metric, click-through rate and conversion."
                + (
                    ""
                    if chart
                    else f" No lift chart yet ({early})."
                    if early
                    else " No lift chart yet: no arm has an estimable lift in"
                    f" {METRIC_NAMES[primary].lower()}."
                ),
                testid="lifts",
                empty="No comparison yet.",
            ),
            PanelTable(
                "Guardrails (non-inferiority)",
                ["Arm", "Metric", "Allowed change", "Worst plausible lift", "Result"],
                guard_rows,
                testid="guardrails",
                empty="No guardrails declared.",
            ),
            PanelTable(
                "Incrementality",
                [
                    "Where",
                    "Arm",
                    "Incremental share",
                    "CI",
                    "Purchases per person (treatment)",
                    "Purchases per person (holdout)",
                    "Warnings",
                ],
                incr,
                note="The share of recommendation-attributed purchases that would not have"
                " happened without the module (needs a holdout arm).",
                testid="incrementality",
                empty="No holdout arm: incrementality needs one.",
            ),
            PanelTable(
                "Net value",
                ["Arm", "Incremental revenue", "CI", "Operating cost", "Net value", "CI"],
                value_rows,
                testid="net-value",
            ),
        ],
    )


def _lift_chart(r: Report) -> dict[str, object] | None:
    """Relative lift of the primary metric per placement/category, with its interval;
    None when no arm has a lift to draw (an empty chart says nothing)."""
    fig = go.Figure()
    arms = sorted({c.arm for cell in r.cells for c in cell.comparisons})
    drawn = 0
    for arm in arms:
        xs, ys, lo, hi = [], [], [], []
        for cell in r.cells:
            for comp in cell.comparisons:
                est = comp.estimates.get(r.primary_metric)
                if comp.arm != arm or est is None or est.lift is None:
                    continue
                xs.append(_where(cell.placement, cell.category))
                ys.append(est.lift)
                drawn += 1
                lo.append(est.lift - (est.lift_low if est.lift_low is not None else est.lift))
                hi.append((est.lift_high if est.lift_high is not None else est.lift) - est.lift)
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=ys,
                mode="markers",
                name=arm,
                marker={"size": 10},
                error_y={"type": "data", "symmetric": False, "array": hi, "arrayminus": lo},
            )
        )
    if not drawn:
        return None
    fig.add_hline(y=0, line_color="#6b7a75")
    return charts.styled(
        fig, f"Lift in {METRIC_NAMES[r.primary_metric].lower()} (with CI)", yaxis_tickformat="+.0%"
    )
