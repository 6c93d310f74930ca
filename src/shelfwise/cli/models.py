"""``shelfwise models list|prune``: the model bundles of the configured store
(``MODEL_DIR``, or the database with ``SHELFWISE_BUNDLE_STORE=database``)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from shelfwise.bundles.store import retained
from shelfwise.cli.common import console, print_json, runtime_of

app = typer.Typer(help="List and prune model bundles.", no_args_is_help=True)


def _states(
    versions: list[str], current: str | None, promoted: set[str], fallbacks: set[str]
) -> dict[str, str]:
    """Each version's standing: promoted, a fallback, promoted before, or never promoted."""
    return {
        v: "promoted"
        if v == current
        else "fallback"
        if v in fallbacks
        else "promoted before"
        if v in promoted
        else "never promoted"
        for v in versions
    }


@app.command("list")
def list_bundles(
    ctx: typer.Context,
    keep: Annotated[
        int, typer.Option(min=0, help="Also say what `prune --keep KEEP` would remove.")
    ] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Every bundle, newest first: its size and standing (promoted, fallback, ...)."""
    with runtime_of(ctx, load=False) as runtime:
        store = runtime.bundle_store
        sizes = store.sizes()
        versions = sorted(sizes, reverse=True)
        current, promoted = store.current_version(), store.promoted_versions()
        fallbacks = set(store.fallbacks(current)) if current else set()
        states = _states(versions, current, promoted or set(), fallbacks)
        kept = retained(versions, current, promoted, keep)
    rows = [
        {"version": v, "bytes": sizes[v], "state": states[v], "pruned": v not in kept}
        for v in versions
    ]
    if as_json:
        print_json({"bundle_store": runtime.settings.bundle_store, "bundles": rows})
        return
    table = Table(title=f"model bundles ({runtime.settings.bundle_store} store)")
    for column in ("version", "MB", "state", f"prune --keep {keep}"):
        table.add_column(column)
    for v in versions:
        gone = "removes" if v not in kept else "keeps"
        table.add_row(v, f"{sizes[v] / 1e6:.1f}", states[v], gone)
    console.print(table)


@app.command("prune")
def prune(
    ctx: typer.Context,
    keep: Annotated[
        int,
        typer.Option(
            min=0,
            help="Fallbacks to keep after the promoted bundle (older promoted versions, "
            "newest first), and as many of the bundles written after it.",
        ),
    ] = 3,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Remove old bundles: all but the promoted one, KEEP fallbacks and the KEEP newest
    written after it. With the database store, content no kept bundle shares is
    deleted too, and this machine's cache loses the removed versions (run it on each
    machine to tidy its cache). Never touches what a server is serving or falls back to."""
    with runtime_of(ctx, load=False) as runtime:
        done = runtime.bundle_store.prune(keep, dry_run=dry_run)
    if as_json:
        print_json(
            {
                "dry_run": done.dry_run,
                "kept": list(done.kept),
                "removed": list(done.removed),
                "freed_bytes": done.freed_bytes,
            }
        )
        return
    verb = "would remove" if dry_run else "removed"
    console.print(
        f"{verb} {len(done.removed)} bundle(s), {done.freed_bytes / 1e6:.1f} MB; "
        f"kept {len(done.kept)}: {', '.join(done.kept) or 'none'}"
    )
    for version in done.removed:
        console.print(f"  {verb}: {version}")
