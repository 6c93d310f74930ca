"""``shelfwise quarantine list|replay``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from shelfwise.cli.common import console, print_json, runtime_of

app = typer.Typer(help="Inspect and replay rejected events.", no_args_is_help=True)


@app.command("list")
def list_entries(
    ctx: typer.Context,
    status: Annotated[str, typer.Option(help="open, replayed, or all.")] = "open",
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Rows to show.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """Rejected events with their reasons (newest last)."""
    with runtime_of(ctx, load=False) as runtime:
        q = runtime.ingestor.quarantine
        entries = q.entries(status=None if status == "all" else status, limit=limit)
        counts = q.counts()
    if as_json:
        print_json({"counts": counts, "entries": [e.as_dict() for e in entries]})
        return
    table = Table(
        title=f"Quarantine ({', '.join(f'{k} {v}' for k, v in counts.items()) or 'empty'})"
    )
    for col in ("id", "source", "event", "seen", "reasons"):
        table.add_column(col)
    for e in entries:
        reasons = "; ".join(f"{r['code']} @ {r['field'] or '(event)'}" for r in e.reasons)
        table.add_row(str(e.id), e.source, e.event_id or "?", str(e.seen_count), reasons)
    console.print(table)


@app.command("replay")
def replay(
    ctx: typer.Context,
    ids: Annotated[
        list[int] | None, typer.Argument(help="Entry ids (default: every open one).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Re-validate quarantined events after a fix; those that now pass are stored."""
    with runtime_of(ctx) as runtime:
        result = runtime.ingestor.replay(ids or None).as_dict()
    if as_json:
        print_json(result)
        return
    console.print(
        f"[green]{result['accepted']} stored[/], {result['duplicate']} already stored, "
        f"[red]{result['still_rejected']} still rejected[/]"
    )
