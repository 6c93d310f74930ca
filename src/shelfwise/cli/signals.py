"""``shelfwise signals report|reconcile|resolve|unmerge``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from shelfwise.cli.common import console, print_json, runtime_of
from shelfwise.contracts.quality import METRICS, quality_report
from shelfwise.contracts.reconcile import reconcile
from shelfwise.contracts.schemas import export

app = typer.Typer(
    help="Signal quality, product-id reconciliation and identity.", no_args_is_help=True
)


@app.command("report")
def report(
    ctx: typer.Context,
    fdr: Annotated[float, typer.Option(min=0.0001, max=0.5, help="False-discovery rate.")] = 0.05,
    min_effect: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Smallest rate gap worth a flag.")
    ] = 0.05,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Per platform x browser x app version: volumes, funnel, duplicate/late/violation
    and join rates; segments that deviate from the rest are flagged (BH-controlled)."""
    with runtime_of(ctx, load=False) as runtime:
        rep = quality_report(runtime.db, fdr=fdr, min_effect=min_effect)
    if as_json:
        print_json(rep.as_dict())
        return
    table = Table(title="Signal quality by segment")
    for col in ("platform", "browser", "app", "events", *METRICS):
        table.add_column(col, justify="right" if col not in ("platform", "browser") else "left")
    for s in rep.segments:
        rates = [s.rate(m) for m in METRICS]
        table.add_row(
            *s.segment,
            f"{s.counts.get('events', 0):,}",
            *("-" if r is None else f"{r:.1%}" for r in rates),
        )
    console.print(table)
    if not rep.flags:
        console.print("[green]no segment deviates from the rest[/]")
    for f in rep.flags:
        console.print(
            f"[red]flag[/] {' / '.join(f.segment)}: {f.metric} {f.rate:.1%} vs {f.rest_rate:.1%} "
            f"elsewhere (q={f.q_value:.2g}), revenue involved ~{f.revenue_at_stake:,.2f}"
        )


@app.command("reconcile")
def reconcile_ids(
    ctx: typer.Context,
    apply_aliases: Annotated[
        bool, typer.Option("--apply-aliases", help="Record formatting/variant misses as aliases.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check every product id in the events against the catalog; classify the misses."""
    with runtime_of(ctx, load=False) as runtime:
        rep = reconcile(runtime.db, runtime.catalog, runtime.aliases)
        added = runtime.aliases.add_many(rep.fixes) if apply_aliases else 0
    out = {**rep.as_dict(), "aliases_added": added}
    if as_json:
        print_json(out)
        return
    console.print(f"join rate {rep.join_rate:.2%} over {rep.lines:,} lines; misses {rep.misses}")
    table = Table(title="Join rate by event type and platform")
    for col in ("type", "platform", "lines", "join rate"):
        table.add_column(col)
    for s in rep.segments:
        table.add_row(s.event_type, s.platform, f"{s.lines:,}", f"{s.rate:.1%}")
    console.print(table)
    if added:
        console.print(f"{added} aliases recorded")


@app.command("resolve")
def resolve(
    ctx: typer.Context,
    any_id: Annotated[str, typer.Argument(help="An anonymous, device or customer id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """The person behind an id and every id of their profile."""
    with runtime_of(ctx, load=False) as runtime:
        person = runtime.identity.resolve(any_id)
        ids = runtime.identity.profile(any_id)
    if as_json:
        print_json({"person_id": person, "ids": ids})
        return
    console.print(f"{person}: {', '.join(ids)}")


@app.command("unmerge")
def unmerge(
    ctx: typer.Context,
    merge_id: Annotated[int, typer.Argument(help="Id of the merge-log row to undo.")],
) -> None:
    """Undo one identity merge (it will not be re-created automatically)."""
    with runtime_of(ctx, load=False) as runtime:
        runtime.identity.unmerge(merge_id)
    console.print(f"merge {merge_id} undone")


@app.command("export-schemas")
def export_schemas(
    out: Annotated[Path, typer.Option(help="Folder for the schemas and examples.")] = Path(
        "docs/events"
    ),
) -> None:
    """Write the JSON Schema of every event type, with one valid and one invalid example."""
    written = export(out)
    console.print(f"{len(written)} files written under {out}")
