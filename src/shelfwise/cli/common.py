"""What every CLI command shares: loading settings, opening the runtime, printing errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from shelfwise.config import Settings, load_settings
from shelfwise.errors import ShelfwiseError
from shelfwise.runtime import Runtime

console = Console()
err_console = Console(stderr=True, soft_wrap=True)


def settings_of(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj or {}
    settings = obj.get("settings")
    if settings is None:
        settings = load_settings(obj.get("config"), **obj.get("overrides", {}))
        obj["settings"] = settings
    assert isinstance(settings, Settings)
    return settings


@contextmanager
def runtime_of(ctx: typer.Context, *, load: bool = True) -> Iterator[Runtime]:
    runtime = Runtime.open(settings_of(ctx), load=load)
    try:
        yield runtime
    finally:
        runtime.close()


def fail(exc: ShelfwiseError) -> typer.Exit:
    err_console.print(f"[bold red]error[/] {escape(f'[{exc.code}] {exc.message}')}")
    return typer.Exit(code=2)


def print_json(data: Any) -> None:
    console.print_json(json.dumps(data, default=str))


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, default=str))
