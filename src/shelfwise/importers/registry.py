"""Data sets by name, for the CLI and the benchmarks."""

from __future__ import annotations

from pathlib import Path

from shelfwise.errors import InvalidInput
from shelfwise.importers.base import SourceData


def read_dataset(name: str, path: Path | None, data_root: Path) -> SourceData:
    """Read data set ``name`` from ``path`` or its default place under ``data_root``."""
    if name == "online_retail":
        from shelfwise.importers import online_retail

        return online_retail.read_online_retail(path or data_root / online_retail.DATA_FILE)
    raise InvalidInput(f"unknown data set {name!r}", code="unknown_dataset")
