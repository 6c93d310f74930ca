"""``shelfwise keys create|list|revoke``: API keys stored (hashed) in the database."""

from __future__ import annotations

from typing import Annotated

import typer

from shelfwise.access import KeyStore
from shelfwise.cli.common import console, print_json, runtime_of
from shelfwise.config import ROLES, Role

app = typer.Typer(help="Create, list and revoke API keys (stored hashed).", no_args_is_help=True)


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Who or what the key is for.")],
    role: Annotated[
        list[str],
        typer.Option(
            "--role",
            "-r",
            help="ingest, merchandiser, admin, read or storefront (repeatable; a storefront "
            "key holds no other role).",
        ),
    ],
    origin: Annotated[
        list[str] | None,
        typer.Option(
            "--origin",
            help="storefront keys: a web origin its pages run on, https://shop.example "
            "(repeatable; * = any).",
        ),
    ] = None,
    rate_limit: Annotated[
        str | None,
        typer.Option(
            "--rate-limit",
            help="storefront keys: its own limit, e.g. 600/minute (default: the setting "
            "storefront_rate_limit).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Create a key and print its secret (shown only once)."""
    roles: list[Role] = []
    for r in role:
        if r not in ROLES:
            raise typer.BadParameter(f"unknown role {r!r}", param_hint="--role")
        roles.append(r)
    with runtime_of(ctx, load=False) as runtime:
        key = KeyStore(runtime.db).create(
            name, roles, created_by="cli", origins=origin, rate_limit=rate_limit
        )
    if as_json:
        print_json(key.model_dump(mode="json"))
    else:
        console.print(
            f"key {key.key_id} for {name} ({', '.join(key.roles)}): [bold]{key.secret}[/]"
        )


@app.command("list")
def list_keys(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List stored keys (never their secrets)."""
    with runtime_of(ctx, load=False) as runtime:
        keys = KeyStore(runtime.db).list()
    if as_json:
        print_json([k.model_dump(mode="json") for k in keys])
        return
    for k in keys:
        state = "revoked" if k.revoked_at else "active"
        console.print(f"{k.key_id}  {k.name:<24} {','.join(k.roles):<24} {state}")


@app.command("revoke")
def revoke(ctx: typer.Context, key_id: Annotated[str, typer.Argument(help="The key id.")]) -> None:
    """Revoke a key; running servers refuse it within 2 seconds."""
    with runtime_of(ctx, load=False) as runtime:
        KeyStore(runtime.db).revoke(key_id)
    console.print(f"revoked {key_id}")
