"""``shelfwise evaluate --protocol session-next-item|basket-completion``: protocols with peers.

The store's events and catalog, the served pipeline's placements, one test
window after ``--cutoff`` and a validation window before it (every choice is
made there). Writes ``<protocol>.md`` / ``.json`` into ``--out``.
"""

from __future__ import annotations

from contextlib import nullcontext
from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table

from shelfwise.cli.common import console, fail, print_json, runtime_of
from shelfwise.errors import InvalidInput
from shelfwise.evaluation.basket_protocol import basket_completion
from shelfwise.evaluation.protocol_report import (
    ProtocolResult,
    Spec,
    cell,
    coherence_lines,
    write,
)
from shelfwise.evaluation.session_protocol import session_next_item
from shelfwise.training.job import load_sources_config
from shelfwise.training.reader import read_log

PROTOCOLS: tuple[str, ...] = ("people", "session-next-item", "basket-completion")


def run_protocol(
    ctx: typer.Context,
    protocol: str,
    cutoff: datetime | None,
    window_days: int,
    validation_days: int | None,
    k: int | None,
    out: Path,
    sources_config: Path | None,
    resamples: int,
    seed: int,
    as_json: bool,
) -> None:
    """Run one peer protocol on the store and print (or ``--json``) its table."""
    with (
        runtime_of(ctx) as runtime,
        console.status("reading events", spinner="dots")
        if not as_json
        else nullcontext() as status,
    ):
        config = load_sources_config(sources_config or runtime.settings.sources_config)
        log = read_log(runtime.db, items=list(runtime.snapshot.ids))
        run = session_next_item if protocol == "session-next-item" else basket_completion
        try:
            spec = Spec(
                cutoff,
                window_days,
                validation_days,
                k,
                config,
                list(runtime.snapshot.products),
                resamples,
                seed,
                (lambda s: status.update(s)) if status is not None else None,
                runtime.settings.ranking,
            )
            result = run(log, runtime.snapshot, list(runtime.placements), spec)
        except InvalidInput as exc:
            raise fail(exc) from exc
    paths = write(result, out)
    if as_json:
        print_json({**result.as_dict(), "report": {n: str(p) for n, p in paths.items()}})
        return
    _print(result)
    console.print(f"report: {paths['markdown']} ({result.seconds:.0f} s)")


def _print(result: ProtocolResult) -> None:
    table = Table(title=f"{result.protocol}, test {result.windows['test']} (95% intervals)")
    table.add_column("model")
    for metric in result.metrics:
        table.add_column(f"{metric.upper()}@{result.k}", justify="right")
    for name, model in result.models.items():
        table.add_row(name, *(cell(model[metric]) for metric in result.metrics))
    console.print(table)
    for metric, r in result.ratios.items():
        x = r["ratio"]
        console.print(
            f"shelfwise / {r['best_peer']} {metric.upper()}@{result.k}: "
            f"x{x['mean']:.3f} [{x['low']:.3f}, {x['high']:.3f}]"
        )
    console.print(f"served: {result.served_label}")
    for placement, c in result.coherence.items():
        console.print(f"coherence of {placement}'s test slates: " + "; ".join(coherence_lines(c)))


__all__ = ["PROTOCOLS", "run_protocol"]
