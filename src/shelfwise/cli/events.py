"""``shelfwise events import FILE`` and ``shelfwise events load-dataset NAME``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from shelfwise.cli.common import console, print_json, runtime_of
from shelfwise.contracts.files import detect_format, parse_mapping, read_batches

app = typer.Typer(
    help="Import behavioural events through the ingestion path.", no_args_is_help=True
)

DATASETS = ("online_retail", "rees46", "diginetica")
_DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"


def _progress(disable: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,} events"),
        TimeElapsedColumn(),
        console=console,
        disable=disable,
    )


@app.command("import")
def import_events(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="JSONL (one event per line) or CSV file.")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="jsonl or csv (default: from the suffix).")
    ] = None,
    mapping: Annotated[
        list[str] | None,
        typer.Option("--map", help="CSV only: FIELD=COLUMN, repeatable (e.g. product_id=sku)."),
    ] = None,
    constants: Annotated[
        list[str] | None,
        typer.Option("--set", help="CSV only: FIELD=VALUE for every row (e.g. type=product_view)."),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, max=100_000, help="Events per transaction.")
    ] = 5_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Validate and store events; rejected ones are quarantined with their reasons.

    Re-importing the same file stores nothing new (events are idempotent by event_id).
    """
    kind = detect_format(file, fmt)
    fields = parse_mapping(mapping or [])
    consts = dict(parse_mapping(constants or []))
    totals: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    with runtime_of(ctx, load=False) as runtime, _progress(as_json) as progress:
        if runtime.settings.require_known_products:
            runtime.snapshot.load()
        task = progress.add_task("importing", total=None)
        ingestor = runtime.bulk_ingestor()
        for batch in read_batches(file, kind, batch_size, fields, consts):
            report = ingestor.ingest(batch.raws, source="file", unreadable=batch.unreadable)
            totals.update(report.counts())
            reasons.update(report.reasons())
            progress.advance(task, len(batch.raws))
    result: dict[str, Any] = {
        "file": str(file),
        **{k: totals.get(k, 0) for k in ("received", "accepted", "duplicate", "rejected")},
        "reasons": dict(sorted(reasons.items())),
    }
    if as_json:
        print_json(result)
        return
    console.print(
        f"received {result['received']:,}: [green]{result['accepted']:,} accepted[/], "
        f"{result['duplicate']:,} duplicate, [red]{result['rejected']:,} rejected[/]"
    )
    for code, n in result["reasons"].items():
        console.print(f"  {code}: {n:,}")


@app.command("load-dataset")
def load_dataset(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help=f"One of: {', '.join(DATASETS)}.")],
    path: Annotated[
        Path | None, typer.Option(help="Data file or folder (default: ../shared/data/...).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Load a public data set into the catalog and the event store (idempotent)."""
    from shelfwise.importers import load_source
    from shelfwise.importers.registry import read_dataset

    data = read_dataset(name, path, _DATA)
    with runtime_of(ctx, load=False) as runtime, _progress(as_json) as progress:
        task = progress.add_task(name, total=len(data.events))
        report = load_source(
            data,
            runtime.catalog,
            runtime.bulk_ingestor(),
            on_progress=lambda n: progress.advance(task, n),
        )
    if as_json:
        print_json(report.as_dict())
        return
    ev = report.events
    console.print(
        f"{name}: {report.rows:,} rows, products {report.products}, events received "
        f"{ev['received']:,}: [green]{ev['accepted']:,} accepted[/], {ev['duplicate']:,} duplicate, "
        f"[red]{ev['rejected']:,} rejected[/] in {report.seconds:.1f}s"
    )
    for code, n in {**report.rejected_rows, **report.rejected_events}.items():
        console.print(f"  refused {code}: {n:,}")
