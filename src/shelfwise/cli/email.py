"""``shelfwise email-batch``: slates for a segment of people, one JSON line each."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from shelfwise.cli.common import console, print_json, runtime_of
from shelfwise.errors import InvalidInput
from shelfwise.pipeline.batch import email_lines, segment_people, write_jsonl
from shelfwise.store.types import utcnow


def email_batch(
    ctx: typer.Context,
    segment: Annotated[
        str, typer.Option(help="Who: active:DAYS, buyers:DAYS or file:PATH (one person id a line).")
    ],
    out: Annotated[Path, typer.Option(help="Where to write the slates (JSON lines).")],
    placement: Annotated[
        str, typer.Option(help="Placement to build (a batch placement).")
    ] = "email",
    k: Annotated[
        int | None, typer.Option(min=1, help="Slate size (default: the placement's k).")
    ] = None,
    explain: Annotated[
        bool, typer.Option(help="Include the full decision trace in each line.")
    ] = False,
    now: Annotated[
        str | None,
        typer.Option(help="Send time as an ISO datetime (default: now); seasons and rules use it."),
    ] = None,
    jobs: Annotated[
        int,
        typer.Option(
            min=0,
            help="Worker processes computing the slates (0: one per core; 1: this process). "
            "The slates are the same for any number.",
        ),
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Write email slates for a segment with the same rules and traces as the API."""
    at = utcnow()
    if now is not None:
        at = datetime.fromisoformat(now)
        if at.tzinfo is None:
            raise InvalidInput("--now needs a time zone", code="invalid_clock")
    started = time.perf_counter()
    with runtime_of(ctx) as runtime:
        people = segment_people(runtime.db, segment, at)
        with (
            out.open("wb") as fh,
            Progress(console=console, transient=True, disable=as_json) as bar,
        ):
            task = bar.add_task("email slates", total=len(people))
            written = write_jsonl(
                email_lines(
                    runtime.recommender,
                    runtime.db,
                    people,
                    at,
                    placement=placement,
                    k=k,
                    explain=explain,
                    on_progress=lambda n: bar.advance(task, n),
                    jobs=jobs,
                ),
                fh,
            )
    summary = {
        "segment": segment,
        "people": len(people),
        "slates": written,
        "out": str(out),
        "seconds": round(time.perf_counter() - started, 2),
    }
    if as_json:
        print_json(summary)
    else:
        console.print(
            f"[bold green]{written}[/] slates for {segment} written to {out} in {summary['seconds']} s"
        )
