"""``shelfwise simulate``: a synthetic home-goods store and its history, to files or a server."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress

from shelfwise.cli.common import console, err_console, print_json
from shelfwise.simulate.defects import (
    CtrDrop,
    Defects,
    IdentitySplit,
    IdFormat,
    SafariCartLoss,
    SupplierStockout,
)
from shelfwise.simulate.history import simulate as run_simulation
from shelfwise.simulate.output import HttpWriter, write_files
from shelfwise.simulate.world import DEFAULT_START, SimulationSpec


def _start(value: str | None) -> datetime:
    if value is None:
        return DEFAULT_START
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as e:
        raise typer.BadParameter(f"not an ISO date: {value!r}") from e
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def simulate(
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same files.")] = 7,
    products: Annotated[int, typer.Option(min=10, max=100_000, help="Catalog size.")] = 2_000,
    people: Annotated[int, typer.Option(min=1, help="Number of shoppers.")] = 2_000,
    days: Annotated[int, typer.Option(min=1, max=730, help="Days of history.")] = 28,
    start: Annotated[
        str | None, typer.Option(help="First day (ISO date, UTC); default 2026-10-05.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the files into this folder.")] = None,
    url: Annotated[
        str | None,
        typer.Option(
            help="Post to this server instead (a batch it cannot take for now is sent again, up to 3 times)."
        ),
    ] = None,
    api_key: Annotated[str | None, typer.Option(help="API key for --url.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Events per HTTP batch.")] = 500,
    slates: Annotated[
        bool, typer.Option(help="Show popularity slates in the history (rec events).")
    ] = True,
    safari_cart_loss: Annotated[
        float,
        typer.Option(min=0, max=1, help="Share of mobile-Safari sessions losing add_to_cart."),
    ] = 0.0,
    id_format_share: Annotated[
        float,
        typer.Option(min=0, max=1, help="Share of one surface's sessions with reformatted ids."),
    ] = 0.0,
    id_format_surface: Annotated[
        str, typer.Option(help="Surface of the id-format defect.")
    ] = "android_app",
    id_format_style: Annotated[
        str, typer.Option(help="lower | whitespace | strip_zeros.")
    ] = "strip_zeros",
    identity_split: Annotated[
        float, typer.Option(min=0, max=1, help="Share of multi-device customers never linked.")
    ] = 0.0,
    ctr_drop: Annotated[
        float, typer.Option(min=0, max=1, help="Click drop of the incident.")
    ] = 0.0,
    ctr_drop_category: Annotated[
        str, typer.Option(help="Category of the CTR drop.")
    ] = "kitchen/cookware",
    ctr_drop_placement: Annotated[
        str, typer.Option(help="Placement of the CTR drop.")
    ] = "product_page",
    ctr_drop_day: Annotated[int, typer.Option(min=0, help="Day the CTR drop starts.")] = 14,
    stockout_brand: Annotated[
        str | None, typer.Option(help="Brand whose supplier runs out of stock.")
    ] = None,
    stockout_day: Annotated[int, typer.Option(min=0, help="Day the stock-out starts.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Generate a home-goods store and its shoppers' history, with optional injected defects.

    Writes catalog.csv, catalog.jsonl, events.jsonl, catalog_changes.jsonl and
    ground_truth.json into --out, or posts catalog and events to --url.
    """
    if (out is None) == (url is None):
        raise typer.BadParameter("give exactly one of --out DIR or --url URL")
    if url is not None and not api_key:
        raise typer.BadParameter("--url needs --api-key")
    try:
        defects = Defects(
            safari_cart_loss=SafariCartLoss(share=safari_cart_loss),
            id_format=IdFormat(
                share=id_format_share, surface=id_format_surface, style=id_format_style
            ),
            identity_split=IdentitySplit(share=identity_split),
            ctr_drop=CtrDrop(
                drop=ctr_drop,
                placement=ctr_drop_placement,
                category=ctr_drop_category,
                from_day=ctr_drop_day,
            ),
            supplier_stockout=SupplierStockout(brand=stockout_brand, from_day=stockout_day),
        )
        spec = SimulationSpec(
            seed=seed,
            products=products,
            people=people,
            days=days,
            start=_start(start),
            defects=defects,
        )
    except ValueError as e:
        raise typer.BadParameter(str(e)) from e
    began = time.perf_counter()
    with Progress(console=console, disable=as_json, transient=True) as bar:
        task = bar.add_task("simulating days", total=days)
        try:
            sim = run_simulation(
                spec,
                "popularity" if slates else None,
                progress=lambda day: bar.update(task, completed=day),
            )
        except (KeyError, ValueError) as e:
            err_console.print(f"[bold red]error[/] unknown name in the defects: {e}")
            raise typer.Exit(code=2) from e
    summary: dict[str, Any] = {
        "seed": seed,
        "products": sim.world.catalog.n,
        "people": people,
        "days": days,
        "sessions": sim.sessions,
        "events": len(sim.events),
        "orders": sim.orders,
        "seconds": round(time.perf_counter() - began, 2),
    }
    if out is not None:
        files = write_files(sim, out)
        summary["files"] = {name: str(path) for name, path in files.items()}
    else:
        assert url is not None and api_key is not None
        writer = HttpWriter(url, api_key, batch_size=batch_size)
        try:
            summary["posted"] = writer.write(sim)
        finally:
            writer.close()
    if as_json:
        print_json(summary)
        return
    console.print(
        f"[bold green]simulated[/] {summary['products']} products, {people} people, {days} days: "
        f"{summary['sessions']} sessions, {summary['events']} events, {summary['orders']} orders "
        f"in {summary['seconds']} s"
    )
    for key, value in summary.get("files", summary.get("posted", {})).items():
        console.print(f"  {key:22} {value}")
