"""``shelfwise db upgrade|current``."""

from __future__ import annotations

import typer

from shelfwise.cli.common import console, settings_of
from shelfwise.store import connect, upgrade
from shelfwise.store.migrate import current_revision

app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade(ctx: typer.Context) -> None:
    """Migrate the configured database to the newest schema (safe to repeat)."""
    db = connect(settings_of(ctx))
    try:
        upgrade(db)
        console.print(f"schema at {current_revision(db)} ({db.backend})")
    finally:
        db.dispose()


@app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Print the schema revision of the configured database."""
    db = connect(settings_of(ctx))
    try:
        console.print(current_revision(db) or "(empty)")
    finally:
        db.dispose()
