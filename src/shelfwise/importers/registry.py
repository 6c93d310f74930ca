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
    if name == "rees46":
        from shelfwise.importers import rees46

        return rees46.read_rees46(path or data_root / rees46.DATA_FILE)
    if name == "diginetica":
        from shelfwise.importers import diginetica

        return diginetica.read_diginetica(path or data_root / diginetica.DATA_DIR)
    raise InvalidInput(f"unknown data set {name!r}", code="unknown_dataset")
