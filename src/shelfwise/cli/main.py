"""``shelfwise``: serve, import, report, train, recommend — thin over the core."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from shelfwise import __version__
from shelfwise.cli import (
    alerts,
    catalog,
    db,
    demo,
    email,
    evaluate,
    events,
    experiments,
    keys,
    models,
    monitoring,
    people,
    quarantine,
    rules,
    signals,
    simulate,
    train,
)
from shelfwise.cli.common import err_console, settings_of
from shelfwise.errors import ShelfwiseError

app = typer.Typer(
    name="shelfwise",
    help="shelfwise: governed, explained product recommendations for online stores.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(catalog.app, name="catalog")
app.add_typer(db.app, name="db")
app.add_typer(keys.app, name="keys")
app.add_typer(models.app, name="models")
app.add_typer(experiments.app, name="experiments")
app.add_typer(alerts.app, name="alerts")
app.add_typer(monitoring.app, name="monitoring")
app.add_typer(rules.app, name="rules")
app.add_typer(events.app, name="events")
app.add_typer(quarantine.app, name="quarantine")
app.add_typer(signals.app, name="signals")
app.add_typer(people.app, name="people")
app.command("demo")(demo.demo)
app.command("simulate")(simulate.simulate)
app.command("email-batch")(email.email_batch)
app.command("train")(train.train)
app.command("evaluate")(evaluate.evaluate)


def _version(value: bool) -> None:
    if value:
        print(f"shelfwise {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML/JSON settings file (must exist).")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="Override SHELFWISE_DATABASE_URL.")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    overrides = {"database_url": database_url} if database_url else {}
    ctx.obj = {"config": config, "overrides": overrides}


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes.")] = None,
    watch_models: Annotated[
        float | None,
        typer.Option(
            min=0,
            help="Seconds between checks for a newly promoted model bundle (0 = off; "
            "default: model_watch_seconds, 10).",
        ),
    ] = None,
) -> None:
    """Run the HTTP API (and dashboard) with uvicorn.

    Each worker loads a newly promoted model bundle by itself (it polls
    MODEL_DIR/CURRENT, or with SHELFWISE_BUNDLE_STORE=database the database's
    latest promotion, fetching the bundle into MODEL_DIR, its local cache);
    POST /v1/models/reload does it at once in one worker.
    Alerts are evaluated every SHELFWISE_ALERT_EVALUATE_EVERY_SECONDS (300; 0 = never) by one worker.
    """
    from shelfwise.api.server import serve as run_server

    settings = settings_of(ctx)
    given = {"host": host, "port": port, "workers": workers}
    changes: dict[str, object] = {k: v for k, v in given.items() if v}
    if watch_models is not None:
        changes["model_watch_seconds"] = watch_models
    if changes:
        settings = settings.model_copy(update=changes)
    run_server(settings)


def main() -> None:
    try:
        app()
    except ShelfwiseError as e:
        err_console.print(f"[bold red]error[/] {escape(f'[{e.code}] {e.message}')}")
        raise SystemExit(2) from e
