"""``shelfwise demo``: a generated home-goods store on the embedded SQLite default, served."""

from __future__ import annotations

from typing import Annotated

import typer

from shelfwise.cli.common import console, settings_of
from shelfwise.config import ApiKey
from shelfwise.runtime import Runtime
from shelfwise.simulate import CatalogSpec, generate_catalog

DEMO_KEY = "demo-admin-key"


def demo(
    ctx: typer.Context,
    products: Annotated[int, typer.Option(min=50, max=100_000, help="Catalog size.")] = 2_000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same store).")] = 7,
    port: Annotated[int | None, typer.Option(help="Port to serve on.")] = None,
    serve: Annotated[bool, typer.Option(help="Start the server after loading.")] = True,
) -> None:
    """Load a demo store into the configured database (SQLite by default) and serve it."""
    settings = settings_of(ctx)
    if not settings.api_keys:
        settings = settings.model_copy(
            update={"api_keys": (ApiKey(name="demo-admin", secret=DEMO_KEY, roles=("admin",)),)}
        )
    if port is not None:
        settings = settings.model_copy(update={"port": port})
    runtime = Runtime.open(settings, load=False)
    try:
        with console.status("generating the demo store"):
            catalog = generate_catalog(CatalogSpec(n_products=products, seed=seed))
            result = runtime.catalog.upsert(catalog, source="demo")
    finally:
        runtime.close()
    base = f"http://{settings.host}:{settings.port}"
    key = DEMO_KEY if settings.api_keys[0].secret == DEMO_KEY else "<your key>"
    console.print(f"[bold green]demo store ready[/]: {len(catalog)} products ({result.as_dict()})")
    console.print(f"  database  {settings.database_url}")
    console.print(f"  API       {base}/docs")
    console.print(f"  health    curl {base}/health")
    console.print(f"  products  curl -H 'X-API-Key: {key}' '{base}/v1/products?limit=3'")
    console.print(
        f"  stock     curl -X PATCH -H 'X-API-Key: {key}' -H 'Content-Type: application/json' "
        f"-d '{{\"stock_qty\": 0}}' {base}/v1/products/P000001"
    )
    if serve:
        from shelfwise.api.server import serve as run_server

        run_server(settings)
