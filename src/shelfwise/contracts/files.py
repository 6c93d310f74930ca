"""Reading event files for ``shelfwise events import``: JSONL, or CSV with a column mapping.

Files are read in batches so memory stays flat; a line that is not JSON is
not an exception but a rejection (``invalid_json``) quarantined with the line.
CSV cells are strings; the contract's lax mode turns ``"2"`` into 2 for
numeric fields, and an empty cell means "absent".
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from shelfwise.contracts.checks import Problem
from shelfwise.contracts.events import EVENT_TYPES
from shelfwise.contracts.quarantine import Rejection
from shelfwise.errors import InvalidInput

Format = Literal["jsonl", "csv"]
EVENT_FIELDS = frozenset(name for model in EVENT_TYPES.values() for name in model.model_fields)


@dataclass
class FileBatch:
    raws: list[Any]
    unreadable: dict[int, Rejection] = field(default_factory=dict)


def detect_format(path: Path, fmt: str | None) -> Format:
    name = (fmt or path.suffix.lstrip(".")).lower()
    if name in ("jsonl", "ndjson", "json"):
        return "jsonl"
    if name == "csv":
        return "csv"
    raise InvalidInput(f"unknown event file format {name!r} (jsonl or csv)", code="unknown_format")


def parse_mapping(items: list[str]) -> dict[str, str]:
    """``["event_id=id", "product_id=sku"]`` -> ``{"event_id": "id", ...}`` (field = column)."""
    out: dict[str, str] = {}
    for item in items:
        target, sep, source = item.partition("=")
        if not sep or not target or not source:
            raise InvalidInput(f"mapping {item!r} must be FIELD=COLUMN", code="invalid_mapping")
        if target not in EVENT_FIELDS:
            raise InvalidInput(f"{target!r} is not an event field", code="invalid_mapping")
        out[target] = source
    return out


def read_batches(
    path: Path,
    fmt: Format,
    batch_size: int,
    mapping: Mapping[str, str] | None = None,
    constants: Mapping[str, str] | None = None,
) -> Iterator[FileBatch]:
    if not path.is_file():
        raise InvalidInput(f"file {path} does not exist", code="file_missing")
    if fmt == "jsonl":
        yield from _jsonl(path, batch_size)
    else:
        yield from _csv(path, batch_size, mapping or {}, constants or {})


def _jsonl(path: Path, batch_size: int) -> Iterator[FileBatch]:
    batch = FileBatch([])
    with path.open("rb") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                batch.raws.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                text = line.decode("utf-8", "replace").rstrip("\n")
                batch.unreadable[len(batch.raws)] = Rejection(
                    {"line": n, "text": text[:10_000]},
                    (Problem("invalid_json", "", f"line {n} is not valid JSON"),),
                )
                batch.raws.append(None)
            if len(batch.raws) >= batch_size:
                yield batch
                batch = FileBatch([])
    if batch.raws:
        yield batch


def _csv(
    path: Path, batch_size: int, mapping: Mapping[str, str], constants: Mapping[str, str]
) -> Iterator[FileBatch]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        columns = reader.fieldnames or []
        missing = sorted(set(mapping.values()) - set(columns))
        if missing:
            raise InvalidInput(
                f"columns not in the file: {', '.join(missing)}", code="invalid_mapping"
            )
        plan = [(f, c) for f, c in mapping.items()]
        mapped = set(mapping)
        plan += [(c, c) for c in columns if c in EVENT_FIELDS and c not in mapped]
        batch = FileBatch([])
        for row in reader:
            raw: dict[str, Any] = dict(constants)
            for target, source in plan:
                value = row.get(source)
                if value not in (None, ""):
                    raw[target] = value
            batch.raws.append(raw)
            if len(batch.raws) >= batch_size:
                yield batch
                batch = FileBatch([])
        if batch.raws:
            yield batch
