"""``shelfwise keys create|list|revoke``: API keys stored (hashed) in the database;
``customer-secret`` and ``customer-token`` for storefront keys' customer tokens."""

from __future__ import annotations

from typing import Annotated

import typer

from shelfwise.access import KeyStore
from shelfwise.cli.common import console, fail, print_json, runtime_of
from shelfwise.config import ROLES, STOREFRONT, Role
from shelfwise.errors import InvalidInput, NotFound
from shelfwise.runtime import Runtime

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
        if key.customer_token_secret is not None:
            console.print(
                f"customer-token secret (for the store's backend only): "
                f"[bold]{key.customer_token_secret}[/]"
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


def _storefront_key_id(runtime: Runtime, ref: str) -> str:
    """The key id customer tokens are bound to (its digest's prefix) of the storefront
    key ``ref``: a configured key's name, or a stored key's id or name."""
    found: tuple[str, list[str], str] | None = next(
        (
            (k.name, [str(r) for r in k.roles], k.digest())
            for k in runtime.settings.api_keys
            if k.name == ref
        ),
        None,
    )
    if found is None:
        found = KeyStore(runtime.db).digest_of(ref)
    if found is None:
        raise fail(NotFound(f"no usable key {ref!r}", code="key_not_found"))
    if STOREFRONT not in found[1]:
        raise fail(InvalidInput(f"{ref!r} is not a storefront key", code="key_not_storefront"))
    return found[2][:16]


@app.command("customer-secret")
def customer_secret(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="A storefront key: its id or name.")],
) -> None:
    """Print the secret a store's backend signs its customers' tokens with, for the
    storefront key KEY (docs/storefront.md). Keep it on the backend, never in a page."""
    with runtime_of(ctx, load=False) as runtime:
        key_id = _storefront_key_id(runtime, key)
        console.print(runtime.customer_tokens().secret(key_id), soft_wrap=True)


@app.command("customer-token")
def customer_token(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="A storefront key: its id or name.")],
    customer: Annotated[str, typer.Argument(help="The customer id (as events name it).")],
    ttl: Annotated[
        int, typer.Option("--ttl", min=1, help="Seconds until the token expires.")
    ] = 3600,
) -> None:
    """Mint a customer token for testing: what a store's backend puts in the page of a
    signed-in customer, so that the storefront key may ask for their slate."""
    with runtime_of(ctx, load=False) as runtime:
        key_id = _storefront_key_id(runtime, key)
        tokens = runtime.customer_tokens()
        if ttl > tokens.max_seconds:
            raise typer.BadParameter(
                f"at most {tokens.max_seconds} (customer_token_max_seconds)", param_hint="--ttl"
            )
        console.print(tokens.mint(key_id, customer, ttl), soft_wrap=True)
