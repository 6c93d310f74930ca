"""``shelfwise catalog import|report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shelfwise.catalog import FEED_FORMATS, completeness, read_feed
from shelfwise.cli.common import console, print_json, runtime_of, settings_of, write_json

app = typer.Typer(help="Import the catalog feed and report its completeness.", no_args_is_help=True)


@app.command("import")
def import_feed(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="Catalog feed: shelfwise CSV or JSONL, Google Merchant Center TSV or XML, "
            "or a Shopify product CSV export."
        ),
    ],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help=f"One of {', '.join(FEED_FORMATS)} (default: read from the file's header "
            "or XML namespace).",
        ),
    ] = None,
    rejects: Annotated[
        Path | None, typer.Option(help="Write rejected rows with reasons to this JSON file.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Validate and upsert a feed. Invalid rows are reported with their line and a code;
    valid rows are imported, all in one transaction.

    Merchant Center and Shopify prices must be in the store's currency (setting
    ``currency``). Re-importing the same feed changes nothing (rows are compared by content).
    """
    feed = read_feed(file, fmt, settings_of(ctx).currency)
    with (
        runtime_of(ctx, load=False) as runtime,
        Progress(
            TextColumn("[bold]importing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=as_json,
        ) as progress,
    ):
        task = progress.add_task("import", total=len(feed.products))
        totals = runtime.catalog.upsert(
            feed.products, source="feed", progress=lambda n: progress.advance(task, n)
        ).as_dict()
    result = {
        "file": str(file),
        "received": feed.received,
        **totals,
        "rejected": len(feed.rejected),
    }
    if rejects is not None:
        write_json(rejects, [r.as_dict() for r in feed.rejected])
    if as_json:
        print_json({**result, "rejections": [r.as_dict() for r in feed.rejected]})
        return
    console.print(
        f"received {feed.received}: [green]{totals['inserted']} inserted[/], "
        f"{totals['updated']} updated, {totals['unchanged']} unchanged, "
        f"[red]{len(feed.rejected)} rejected[/]"
    )
    for r in feed.rejected[:50]:
        reasons = "; ".join(f"{e.field}: {e.message} [{e.code}]" for e in r.errors)
        # The feed's text is not rich markup ("[currency_mismatch]" is no style).
        console.print(escape(f"  line {r.row} ({r.product_id or '?'}): {reasons}"))
    if len(feed.rejected) > 50:
        console.print(f"  … {len(feed.rejected) - 50} more (use --rejects FILE or --json)")


@app.command("report")
def report(
    ctx: typer.Context,
    depth: Annotated[int, typer.Option(min=1, max=6, help="Category levels to group by.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Completeness: share of products missing price, stock, margin, brand, category, variant group, SLA."""
    with runtime_of(ctx, load=False) as runtime:
        rep = completeness(runtime.catalog.iter_all(), depth=depth)
    if as_json:
        print_json(rep.as_dict())
        return
    cols = list(rep.overall.missing_share)
    table = Table(
        title=f"Catalog completeness (missing share), out of stock {rep.out_of_stock_share:.1%}"
    )
    table.add_column("scope")
    table.add_column("products", justify="right")
    for c in cols:
        table.add_column(c, justify="right")
    for row in [rep.overall, *rep.by_category]:
        table.add_row(row.scope, str(row.products), *(f"{row.missing_share[c]:.0%}" for c in cols))
    console.print(table)
