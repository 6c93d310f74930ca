"""``shelfwise people erase|erasures``: the privacy erase and its audit."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from shelfwise.cli.common import console, print_json, runtime_of

app = typer.Typer(help="Privacy: erase a person, list past erasures.", no_args_is_help=True)


@app.command("erase")
def erase(
    ctx: typer.Context,
    person_id: Annotated[
        str,
        typer.Argument(help="customer:ID, anonymous:ID, device:ID, or a bare id (every kind)."),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Erase a person across every id linked to them (audited, no ids kept).

    Deletes their events, identity links, served slates, quarantined events and
    live sessions; the audit entry keeps counts per table, never an id. Train
    again afterwards: the bundle being served still knows the person."""
    with runtime_of(ctx, load=False) as runtime:
        done = runtime.eraser.erase(person_id, who=f"cli:{getpass.getuser()}")
    if as_json:
        print_json(done.model_dump(mode="json"))
        return
    counts = ", ".join(f"{k} {v}" for k, v in done.counts.items())
    console.print(f"erasure {done.erasure_id}: {done.ids} ids; deleted {counts}")


@app.command("erasures")
def erasures(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """The audit of erasures: who, when, counts per table (no personal id)."""
    with runtime_of(ctx, load=False) as runtime:
        done = runtime.eraser.audit(limit)
    if as_json:
        print_json([e.model_dump(mode="json") for e in done])
        return
    for e in done:
        total = sum(v for k, v in e.counts.items() if k != "sessions")
        console.print(f"{e.at:%Y-%m-%d %H:%M:%S}  {e.erasure_id}  {e.who:<24} {total} rows")
