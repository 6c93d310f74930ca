"""``shelfwise train``: fit every candidate source and write (and maybe promote) a bundle."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from shelfwise.cli.common import console, print_json, runtime_of
from shelfwise.cli.evaluate import as_utc
from shelfwise.training.job import STEPS, load_sources_config
from shelfwise.training.job import train as run_training


def train(
    ctx: typer.Context,
    start: Annotated[
        datetime | None, typer.Option(help="First event time to read (UTC); default: end - window.")
    ] = None,
    end: Annotated[
        datetime | None, typer.Option(help="Read events before this time (UTC); default: all.")
    ] = None,
    sources_config: Annotated[
        Path | None,
        typer.Option(help="YAML/JSON SourcesConfig (default: settings.sources_config)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Promote even when the guard metrics got worse.")
    ] = False,
    no_promote: Annotated[
        bool, typer.Option("--no-promote", help="Write the bundle but do not promote it.")
    ] = False,
    ranker: Annotated[
        bool,
        typer.Option(
            "--ranker",
            help="Also train the learned ranker into the bundle, from the history and the "
            "logged impressions (minutes, not seconds).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Read a window of events, fit every source, write a versioned model bundle.

    The bundle is promoted (``<model_dir>/CURRENT``) unless its guard NDCG@10 is
    worse than the promoted bundle's; ``--force`` promotes anyway. A running
    server picks it up with ``POST /v1/models/reload``.
    """
    with (
        runtime_of(ctx) as runtime,
        Progress(
            TextColumn("[bold]{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=as_json,
        ) as progress,
    ):
        config = load_sources_config(sources_config or runtime.settings.sources_config)
        task = progress.add_task("training", total=len(STEPS))
        seen: list[str] = []

        def step(name: str) -> None:
            if seen:
                progress.advance(task)
            seen.append(name)
            progress.update(task, description=name)

        result = run_training(
            runtime,
            config=config,
            start=as_utc(start),
            end=as_utc(end),
            force=force,
            promote=not no_promote,
            step=step,
            with_ranker=ranker,
        )
        progress.update(task, completed=len(STEPS), description="done")
    data = result.as_dict()
    if as_json:
        print_json(data)
        return
    table = Table(title=f"bundle {data['version']}")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for name, seconds in data["timings"].items():
        table.add_row(name, f"{seconds:.2f}")
    console.print(table)
    console.print(f"counts: {data['counts']}")
    console.print(f"guard metrics: {data['metrics']}")
    verdict = "[green]promoted[/]" if data["promoted"] else "[yellow]not promoted[/]"
    console.print(f"{verdict}: {data['decision']}")
