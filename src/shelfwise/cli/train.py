"""``shelfwise train``: fit every candidate source and write (and maybe promote) a bundle."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from shelfwise.cli.common import console, print_json, runtime_of
from shelfwise.cli.evaluate import as_utc
from shelfwise.errors import ShelfwiseError
from shelfwise.training.guard import GuardReport
from shelfwise.training.job import STEPS, TrainResult, load_sources_config
from shelfwise.training.job import train as run_training

REFUSED = 3  # exit code: the bundle was written but the promotion guard refused it


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
        bool,
        typer.Option(
            "--force",
            help="Promote even when the guard refuses (worse metrics, or too few people).",
        ),
    ] = False,
    min_people: Annotated[
        int | None,
        typer.Option(
            "--min-people",
            min=0,
            help="Fewest people the guard must judge to promote over the current bundle "
            "(default: settings.promotion_min_people, 200).",
        ),
    ] = None,
    no_promote: Annotated[
        bool, typer.Option("--no-promote", help="Write the bundle but do not promote it.")
    ] = False,
    ranker: Annotated[
        bool,
        typer.Option(
            "--ranker",
            help="Also train the learned ranker into the bundle, from the history and the "
            "logged impressions (minutes, not seconds): the home ranker's design, or the "
            "blend ranker, chosen on the validation window before the end, as the "
            "backtest chooses it.",
        ),
    ] = False,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs",
            min=0,
            help="Worker processes for the rankers' training windows, the designs the home "
            "ranker is chosen among, its refit's draws, the guard's people and the exposure "
            "cap's placements (default: "
            "settings.train_jobs, 0: one per core available; 1: this process only). The "
            "bundle is the same for any number; each worker holds a share of the memory "
            "(docs/sizing.md).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    every: Annotated[
        float | None,
        typer.Option(
            "--every",
            min=1.0,
            help="Train again every this many seconds until stopped (SIGTERM, Ctrl-C): a "
            "deployment's trainer. A round that fails or is refused is reported (one line, "
            "JSON with --json) and the next one runs.",
        ),
    ] = None,
    rounds: Annotated[
        int, typer.Option("--rounds", min=0, help="With --every: stop after N rounds (0: never).")
    ] = 0,
    keep_bundles: Annotated[
        int | None,
        typer.Option(
            "--keep-bundles",
            min=0,
            help="After training, remove old bundles as `shelfwise models prune --keep N` "
            "does: the promoted one, N fallbacks and the N newest after it stay "
            "(default: remove nothing).",
        ),
    ] = None,
) -> None:
    """Read a window of events, fit every source, write a versioned model bundle.

    The bundle is written to MODEL_DIR (and, with SHELFWISE_BUNDLE_STORE=database, into
    the database every machine reads) and promoted unless the guard refuses:
    on the last ``guard_days`` the NDCG@10 of its served pipeline (the ``home``
    placement, the rules in force, the learned ranker with ``--ranker``) is worse
    than the promoted bundle's, or fewer than ``--min-people`` people were judged. ``--force`` promotes
    anyway. Exit code 0: promoted (or ``--no-promote``); 3: written but refused
    by the guard. Running servers pick a promoted bundle up by themselves.
    With ``--every S`` it trains again every S seconds until stopped (exit 0).
    """

    def once() -> tuple[TrainResult, list[str]]:
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
                min_people=min_people,
                jobs=jobs,
            )
            progress.update(task, completed=len(STEPS), description="done")
            pruned = (
                list(runtime.bundle_store.prune(keep_bundles).removed)
                if keep_bundles is not None
                else []
            )
        return result, pruned

    if every is not None:
        _scheduled(once, every, rounds, as_json)
        return
    result, pruned = once()
    data = {**result.as_dict(), "pruned": pruned}
    if as_json:
        print_json(data)
    else:
        table = Table(title=f"bundle {data['version']}")
        table.add_column("step")
        table.add_column("seconds", justify="right")
        for name, seconds in data["timings"].items():
            table.add_row(name, f"{seconds:.2f}")
        console.print(table)
        console.print(f"counts: {data['counts']}")
        if (choice := result.ranker_choice()) is not None:
            console.print(escape(choice))
        console.print(guard_table(result.guard))
        verdict = "[green]promoted[/]" if data["promoted"] else "[yellow]not promoted[/]"
        console.print(f"{verdict}: {escape(data['decision'])}")
        if pruned:
            console.print(f"removed {len(pruned)} old bundle(s): {', '.join(pruned)}")
    if not result.promoted and not no_promote:
        raise typer.Exit(code=REFUSED)


def _scheduled(
    once: Callable[[], tuple[TrainResult, list[str]]], every: float, rounds: int, as_json: bool
) -> None:
    """Train every ``every`` seconds (from one round's start to the next) until SIGTERM,
    Ctrl-C or ``rounds`` rounds; each round is one line on stdout."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    n = 0
    while not stop.is_set():
        n += 1
        started = time.monotonic()
        line: dict[str, Any] = {"round": n, "started_at": datetime.now(UTC).isoformat()}
        try:
            result, pruned = once()
            data = result.as_dict()
            line.update(
                version=data["version"],
                promoted=data["promoted"],
                decision=data["decision"],
                pruned=pruned,
            )
        except (ShelfwiseError, SQLAlchemyError) as e:  # the next round may do better
            code = e.code if isinstance(e, ShelfwiseError) else "database_unavailable"
            line.update(error=code, message=str(e)[:500])
        if as_json:
            print(json.dumps(line), flush=True)
        else:
            outcome = line.get("error") or ("promoted" if line["promoted"] else "not promoted")
            console.print(f"round {n}: {escape(str(outcome))} {escape(line.get('version', ''))}")
        if rounds and n >= rounds:
            break
        with contextlib.suppress(KeyboardInterrupt):
            if stop.wait(max(0.0, every - (time.monotonic() - started))):
                break
            continue
        break


def guard_table(guard: GuardReport) -> Table:
    """The promotion guard's comparison: one row per metric, current vs candidate."""
    current = guard.current_version or "none"
    table = Table(title=f"promotion guard (current bundle: {current})")
    for name in ("metric", "current bundle", "candidate", "delta", "verdict"):
        table.add_column(name, justify="left" if name in ("metric", "verdict") else "right")
    for row in guard.rows:
        integer = row.metric == "people"
        table.add_row(
            row.metric,
            _cell(row.current, integer),
            _cell(row.candidate, integer),
            _cell(row.delta, integer, signed=True),
            row.verdict,
        )
    return table


def _cell(value: float | None, integer: bool, signed: bool = False) -> str:
    if value is None:
        return "-"
    if integer:
        return f"{value:,.0f}"
    return f"{value:+.4f}" if signed else f"{value:.4f}"
