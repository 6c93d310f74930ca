"""Catalog feeds (CSV, JSONL, HTTP batches) -> validated products + per-row rejections.

Dirty rows are findings, not exceptions: every invalid row comes back with its
row number, product id (when readable) and one reason per failing field, and
the valid rows are still imported.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from shelfwise.catalog.model import Product
from shelfwise.errors import InvalidInput
from shelfwise.values import is_clean_id

LIST_FIELDS = ("tags", "season_tags")
ATTRIBUTE_PREFIX = "attr_"


@dataclass(frozen=True)
class RowError:
    field: str
    code: str
    message: str


@dataclass(frozen=True)
class RejectedRow:
    row: int
    product_id: str | None
    errors: tuple[RowError, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "product_id": self.product_id,
            "errors": [e.__dict__ for e in self.errors],
        }


@dataclass
class ParsedFeed:
    products: list[Product] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)

    @property
    def received(self) -> int:
        return len(self.products) + len(self.rejected)


def errors_from_validation(exc: ValidationError) -> tuple[RowError, ...]:
    """Pydantic errors -> (field path, stable code, message)."""
    return tuple(
        RowError(
            field=".".join(str(p) for p in err["loc"]) or "(row)",
            code=err["type"],
            message=err["msg"],
        )
        for err in exc.errors(include_url=False)
    )


def _csv_row_to_record(row: Mapping[str, str | None]) -> dict[str, Any]:
    """CSV cells are strings: empty means absent, lists are ``|``-separated,
    ``attr_<name>`` columns become attributes."""
    record: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    for key, raw in row.items():
        if key is None:
            record.setdefault("__extra__", []).append(raw)
            continue
        value = (raw or "").strip()
        if value == "":
            continue
        if key in LIST_FIELDS:
            record[key] = [v for v in value.replace(";", "|").split("|") if v.strip()]
        elif key == "attributes":
            try:
                record[key] = orjson.loads(value)  # no recursion: refuses depth > 1024
            except orjson.JSONDecodeError:
                record[key] = value  # the model rejects it with a precise reason
        elif key.startswith(ATTRIBUTE_PREFIX):
            attributes[key.removeprefix(ATTRIBUTE_PREFIX)] = value
        elif key == "active":
            record[key] = value.lower() in ("1", "true", "yes", "y")
        else:
            record[key] = value
    if attributes:
        record["attributes"] = {**attributes, **record.get("attributes", {})}
    return record


def _echoed_id(record: Mapping[str, Any]) -> str | None:
    """The row's product id, when it can be shown back as it is (no NUL, no lone
    surrogate: those cannot be encoded in the answer or stored)."""
    pid = record.get("product_id")
    return pid if is_clean_id(pid) else None


def validate_records(records: Iterable[tuple[int, Any]]) -> ParsedFeed:
    """Validate (row number, raw record) pairs. A later row for the same id wins."""
    feed = ParsedFeed()
    by_id: dict[str, int] = {}
    for row_no, record in records:
        if not isinstance(record, dict):
            feed.rejected.append(
                RejectedRow(
                    row_no, None, (RowError("(row)", "not_an_object", "row is not an object"),)
                )
            )
            continue
        if "__extra__" in record:
            feed.rejected.append(
                RejectedRow(
                    row_no,
                    _echoed_id(record),
                    (RowError("(row)", "too_many_cells", "row has more cells than the header"),),
                )
            )
            continue
        try:
            product = Product.model_validate(record)
        except ValidationError as e:
            feed.rejected.append(RejectedRow(row_no, _echoed_id(record), errors_from_validation(e)))
            continue
        if product.product_id in by_id:
            feed.products[by_id[product.product_id]] = product
        else:
            by_id[product.product_id] = len(feed.products)
            feed.products.append(product)
    return feed


def _jsonl_records(lines: Iterable[str]) -> Iterator[tuple[int, Any]]:
    for row_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield row_no, orjson.loads(line)  # no recursion: refuses depth > 1024
        except orjson.JSONDecodeError as e:
            yield row_no, _Unparsable(f"invalid JSON: {e.msg} at column {e.colno}")


class _Unparsable(dict[str, Any]):
    """A row that could not be parsed; validate_records reports its reason."""

    def __init__(self, reason: str) -> None:
        super().__init__()
        self.reason = reason


def read_feed(path: Path, fmt: str | None = None) -> ParsedFeed:
    """Parse a CSV or JSONL catalog file (format from ``fmt`` or the suffix)."""
    if not path.is_file():
        raise InvalidInput(f"feed file {path} does not exist", code="file_not_found")
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    with path.open(newline="", encoding="utf-8") as fh:
        if fmt == "csv":
            reader = csv.DictReader(fh)
            if not reader.fieldnames or "product_id" not in reader.fieldnames:
                raise InvalidInput(
                    f"{path}: CSV header must include product_id", code="feed_header_invalid"
                )
            # Row numbers count the header as row 1, as a spreadsheet shows them.
            records = ((i + 2, _csv_row_to_record(r)) for i, r in enumerate(reader))
            return validate_records(records)
        if fmt in ("jsonl", "ndjson", "json"):
            return _validate_jsonl(fh)
    raise InvalidInput(f"unknown feed format {fmt!r} (csv or jsonl)", code="feed_format_unknown")


def _validate_jsonl(lines: Iterable[str]) -> ParsedFeed:
    parsed: list[tuple[int, Any]] = []
    unparsable: list[RejectedRow] = []
    for row_no, record in _jsonl_records(lines):
        if isinstance(record, _Unparsable):
            unparsable.append(
                RejectedRow(row_no, None, (RowError("(row)", "invalid_json", record.reason),))
            )
        else:
            parsed.append((row_no, record))
    feed = validate_records(parsed)
    feed.rejected = sorted([*feed.rejected, *unparsable], key=lambda r: r.row)
    return feed
