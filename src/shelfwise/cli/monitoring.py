"""``shelfwise monitoring metrics|drift``: the money metrics and drift checks."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.table import Table

from shelfwise.cli.common import console, fail, print_json, runtime_of
from shelfwise.monitoring.query import DIMENSIONS
from shelfwise.monitoring.timerange import RANGES, resolve

app = typer.Typer(help="Business metrics and drift of the recommendations.", no_args_is_help=True)


@app.command("metrics")
def metrics(
    ctx: typer.Context,
    by: Annotated[
        str, typer.Option(help=f"Comma-separated: {', '.join(DIMENSIONS)}.")
    ] = "placement",
    range_name: Annotated[str, typer.Option("--range", help=f"One of {', '.join(RANGES)}.")] = "7d",
    grain: Annotated[str, typer.Option(help="hour or day (with 'time').")] = "day",
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Impressions, CTR, add-to-cart rate, orders and revenue from recommendations (the
    setting attribution_window_hours) by the chosen dimensions."""
    from shelfwise.dashboard.format import count, money, percent
    from shelfwise.monitoring.metrics import compute_metrics

    dims = tuple(d.strip() for d in by.split(",") if d.strip())
    if set(dims) - set(DIMENSIONS) or grain not in ("hour", "day"):
        raise typer.BadParameter(f"--by takes {', '.join(DIMENSIONS)}; --grain hour or day")
    start, end = resolve(range_name)
    with runtime_of(ctx, load=False) as runtime:
        rep = compute_metrics(
            runtime.db,
            start,
            end,
            dims,
            grain,  # type: ignore[arg-type]
            decisions=runtime.decisions,
            window_hours=runtime.settings.attribution_window_hours,
        )
        currency = runtime.settings.currency
    if as_json:
        print_json(
            {
                "start": start.isoformat(),
                "end": end.isoformat(),
                "rows": [r.as_dict() for r in rep.rows],
                "total": rep.total.as_dict(),
                "sessions": [s.as_dict() for s in rep.sessions],
                "repeat_purchase_rate": rep.repeat_purchase_rate,
                "attribution_window_hours": rep.attribution_window_hours,
                "attribution": rep.attribution,
                "note": rep.note,
            }
        )
        return
    table = Table(title=f"Recommendations {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC")
    revenue = f"revenue ({rep.attribution_window_hours:g} h window)"
    for col in (*rep.by, "shown", "CTR", "orders", revenue, "AOV"):
        table.add_column(col)
    for r in [*rep.rows, rep.total]:
        keys = {"visitor": r.visitor, "time": str(r.period_start or "")}
        table.add_row(
            *(keys.get(d, getattr(r, d, "")) or "all" for d in rep.by),
            count(r.impressions),
            percent(r.ctr),
            count(r.orders),
            money(r.revenue, currency),
            money(r.aov, currency),
        )
    console.print(table)
    console.print(f"[dim]{rep.attribution}[/]")
    console.print(f"[dim]{rep.note}[/]")


@app.command("drift")
def drift(
    ctx: typer.Context,
    range_name: Annotated[str, typer.Option("--range", help="The current window.")] = "24h",
    reference_days: Annotated[int, typer.Option(min=1, max=90, help="Days before it.")] = 14,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """PSI and Jensen-Shannon of the current window against the reference before it."""
    from shelfwise.monitoring.served import drift_report

    start, end = resolve(range_name)
    ref = (start - timedelta(days=reference_days), start)
    with runtime_of(ctx) as runtime:
        rep = drift_report(runtime.db, ref, (start, end), len(runtime.snapshot), runtime.decisions)
    if as_json:
        print_json(
            {
                "drifted": rep.drifted,
                "results": [r.as_dict() for r in rep.results],
                "exposure_reference": rep.exposure_reference.__dict__,
                "exposure_current": rep.exposure_current.__dict__,
            }
        )
        return
    table = Table(title="Drift against the reference window")
    for col in ("what", "PSI", "threshold", "JS", "status"):
        table.add_column(col)
    for r in rep.results:
        table.add_row(
            r.name,
            f"{r.psi:.4f}",
            f"{r.threshold:.4f}",
            f"{r.js:.4f}",
            "[red]drifted[/]" if r.drifted else "[green]stable[/]",
        )
    console.print(table)


@app.command("coherence")
def coherence(
    ctx: typer.Context,
    range_name: Annotated[str, typer.Option("--range", help=f"One of {', '.join(RANGES)}.")] = "7d",
    placement: Annotated[
        str | None, typer.Option(help="One product placement (default: all of them).")
    ] = None,
    by_category: Annotated[
        bool, typer.Option(help="Also a row per category of the viewed product.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Would a merchant keep what the product placements show? From the decision log's
    slates: share of items in the viewed product's category, median price ratio to it,
    the largest share of slates one item takes, catalog coverage, and personal reasons
    on slates asked without a person or a session (each one false)."""
    from shelfwise.dashboard.format import percent
    from shelfwise.errors import NotFound

    start, end = resolve(range_name)
    with runtime_of(ctx) as runtime:
        if placement is not None:
            try:
                runtime.placements.get(placement)
            except NotFound as exc:
                raise fail(exc) from exc
        rep = runtime.coherence(start, end)
    rows = rep.rows_of(placement, by_category)
    if as_json:
        print_json({**rep.as_dict(), "rows": [r.as_dict() for r in rows]})
        return
    table = Table(
        title=f"Product placements' coherence {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC",
        caption="same cat.: items in the viewed product's category; price: median price / "
        "the viewed product's; top item: in the largest share of slates; claims: personal "
        "reasons on slates asked without a person or a session",
    )
    columns = ["placement", *(["viewed category"] if by_category else [])]
    columns += ["slates", "same cat.", "price", "top item", "top share", "coverage", "claims"]
    for col in columns:
        table.add_column(col, overflow="fold", no_wrap=col in ("placement", "viewed category"))
    for r in rows:
        c = r.coherence
        ratio = c.as_dict()["median_price_ratio"]
        table.add_row(
            r.placement,
            *([r.category or "all"] if by_category else []),
            f"{c.slates:,}",
            percent(c.same_category, 1),
            "-" if ratio is None else f"{ratio:.2f}x",
            r.top_title or c.top_item or "-",
            percent(c.top_item_share, 1),
            percent(c.coverage, 1),
            str(c.personal_claims),
        )
    if not rows:
        console.print("No product-page slates in the decision log for this time range.")
        return
    console.print(table)
    if rep.truncated:
        console.print(f"[dim]newest {rep.limit:,} slates read for {', '.join(rep.truncated)}[/]")
