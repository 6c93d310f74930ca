"""``shelfwise alerts list|evaluate``: cost-weighted alerts from the command line."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from shelfwise.cli.common import console, print_json, runtime_of

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
