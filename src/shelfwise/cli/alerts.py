"""``shelfwise alerts list|evaluate|calibrate``: cost-weighted alerts from the command line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from shelfwise.cli.common import console, print_json, runtime_of

if TYPE_CHECKING:
    from shelfwise.monitoring.calibrate import Calibration

app = typer.Typer(help="Alerts on revenue at risk per placement x category.", no_args_is_help=True)


@app.command("list")
def list_alerts(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="Only 'open' or 'resolved' alerts.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Most recent N.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Stored alerts, newest first: series, money per hour at risk, since when, severity."""
    from shelfwise.dashboard.format import money
    from shelfwise.monitoring.alerts import AlertStore

    if status not in (None, "open", "resolved"):
        raise typer.BadParameter("status must be 'open' or 'resolved'")
    with runtime_of(ctx, load=False) as runtime:
        items = AlertStore(runtime.db).list(status=status, limit=limit)  # type: ignore[arg-type]
    if as_json:
        print_json([a.model_dump(mode="json") for a in items])
        return
    table = Table(title=f"{len(items)} alert(s)")
    for col in ("severity", "status", "placement", "category", "at risk / hour", "since", "link"):
        table.add_column(col)
    for a in items:
        table.add_row(
            a.severity,
            a.status,
            a.placement,
            a.category,
            money(a.at_risk_per_hour, a.currency),
            f"{a.since:%Y-%m-%d %H:%M}",
            a.dashboard_path,
        )
    console.print(table)


@app.command("evaluate")
def evaluate(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Run the detector at the current hour: open, update and resolve alerts; notify the webhook."""
    from shelfwise.monitoring.alerts import evaluate_alerts

    with runtime_of(ctx, load=False) as runtime:
        ev = evaluate_alerts(runtime.db, runtime.settings)
    if as_json:
        print_json(
            {
                "evaluated_at": ev.evaluated_at.isoformat(),
                "series": ev.series,
                "opened": [a.model_dump(mode="json") for a in ev.opened],
                "updated": [a.model_dump(mode="json") for a in ev.updated],
                "resolved": [a.model_dump(mode="json") for a in ev.resolved],
                "notified": ev.notified,
            }
        )
        return
    console.print(
        f"{ev.series} series checked: [red]{len(ev.opened)} opened[/], {len(ev.updated)} updated, "
        f"[green]{len(ev.resolved)} resolved[/], {ev.notified} sent to the webhook"
    )
    for a in (*ev.opened, *ev.updated):
        console.print(f"  {a.summary()}")


@app.command("calibrate")
def calibrate(
    ctx: typer.Context,
    weeks: Annotated[int, typer.Option(min=1, max=26, help="Weeks to replay.")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Replay the last N weeks hour by hour at the configured thresholds: the alerts that
    would have opened (one per episode, as alert_resolve_after_hours keeps them open),
    the expected false alerts a month (if those weeks were healthy) counted and from the
    level test's fitted tail (the rule its threshold was picked by), and how well the
    test's null distribution fits this shop's traffic (z spread ~ 1)."""
    from shelfwise.monitoring.alerts import calibrate_store

    with runtime_of(ctx, load=False) as runtime:
        cal = calibrate_store(runtime.db, runtime.settings, weeks)
    spreads = [
        {"window_hours": s.window_hours, "stage": s.stage, "windows": s.windows,
         "z_sd": round(s.z_sd, 3), "z_mean": round(s.z_mean, 3)}
        for s in cal.spreads
    ]  # fmt: skip
    alerts = [
        {"placement": p, "category": c, "alerts": n}
        for (p, c), n in sorted(cal.alerts_by_series.items(), key=lambda kv: -kv[1])
    ]
    if as_json:
        print_json(
            {
                "weeks": cal.weeks,
                "series": cal.series,
                "fdr": cal.fdr,
                "alerts_opened": cal.opened,
                "alerts_per_month": round(cal.per_month, 3),
                "alerts_per_month_upper_95": round(cal.per_month_upper, 3),
                **_fitted(cal),
                "alerts_by_series": alerts,
                "z_spread": spreads,
            }
        )
        return
    console.print(
        f"{cal.weeks:.0f} week(s) replayed over {cal.series} series at fdr {cal.fdr:g}: "
        f"{cal.opened} alert(s) would have opened -> [bold]{cal.per_month:.2f} a month[/] "
        f"(95% upper bound {cal.per_month_upper:.2f}) if those weeks were healthy"
    )
    if cal.tail is not None:
        console.print(
            f"expected from the fitted tails at the level threshold {cal.level_threshold:g}"
            f" and the other tests': [bold]{cal.tail.per_month(cal.level_threshold):.2f}"
            f" a month[/] (95% upper bound {cal.tail.per_month_upper(cal.level_threshold):.2f})"
        )
        parts = [("level test", cal.tail, cal.level_threshold)]
        if cal.tail.others_fit is not None:
            parts.append(("other tests", cal.tail.others_fit, 0.0))
        for name, t, h in parts:
            console.print(
                f"  {name}: {t.level(h) / t.months:.2f} a month (95% upper bound"
                f" {t.level_upper(h) / t.months:.2f}; {t.peaks.size} episode(s) over"
                f" {t.base:g}, scale {t.scale:.2f}{'' if t.fitted else ' assumed: too few to fit'})"
            )
    for a in alerts:
        console.print(f"  {a['placement']} / {a['category']}: {a['alerts']}")
    table = Table(title="z spread of the test (1 = calibrated; above 1 alerts too often)")
    for col in ("window", "stage", "windows", "z sd", "z mean"):
        table.add_column(col)
    for sp in spreads:
        table.add_row(
            f"{sp['window_hours']} h", str(sp["stage"]), str(sp["windows"]),
            f"{sp['z_sd']:.2f}", f"{sp['z_mean']:+.2f}",
        )  # fmt: skip
    console.print(table)


def _fitted(cal: Calibration) -> dict[str, object]:
    """The expected alerts a month from the fitted tails (``monitoring.tail``): the other
    tests' expected alerts at their thresholds plus the level test's expected episodes at
    its threshold; empty when the level test is off."""
    if cal.tail is None:
        return {}
    others = cal.tail.others_fit
    return {
        "alerts_per_month_expected": round(cal.tail.per_month(cal.level_threshold), 3),
        "alerts_per_month_expected_upper_95": round(
            cal.tail.per_month_upper(cal.level_threshold), 3
        ),
        "level_tail": {
            "threshold": cal.level_threshold,
            "base": cal.tail.base,
            "episodes_over_base": int(cal.tail.peaks.size),
            "scale": round(cal.tail.scale, 3),
            "fitted": cal.tail.fitted,
            "other_tests_alerts": cal.tail.others,
        },
        "other_tests_tail": None
        if others is None
        else {
            "base": others.base,
            "episodes_over_base": int(others.peaks.size),
            "scale": round(others.scale, 3),
            "fitted": others.fitted,
            "alerts_per_month_expected": round(others.level(0.0) / others.months, 3),
            "alerts_per_month_expected_upper_95": round(others.level_upper(0.0) / others.months, 3),
        },
    }
