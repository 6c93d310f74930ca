"""Catalog feeds (CSV, JSONL, HTTP batches, Merchant Center, Shopify) -> validated
products + per-row rejections.

Dirty rows are findings, not exceptions: every invalid row comes back with its
line number, product id (when readable) and one reason per failing field, and
the valid rows are still imported.

A file's format is read from its content (:func:`detect_format`): XML in Google's
namespace is a Merchant Center XML feed, a tab-separated header with ``id`` and
``title`` a Merchant Center text feed, a header with ``Handle`` and ``Variant SKU``
a Shopify product export, a line starting with ``{`` JSONL, and any other header
shelfwise's own CSV.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import orjson
from pydantic import ValidationError

from shelfwise.catalog import merchant, shopify
from shelfwise.catalog.model import Product
from shelfwise.catalog.rows import MappedRow, RejectedRow, RowError, RowFailure
from shelfwise.errors import InvalidInput
from shelfwise.values import is_clean_id

LIST_FIELDS = ("tags", "season_tags")
ATTRIBUTE_PREFIX = "attr_"
FeedFormat = Literal["csv", "jsonl", "gmc-tsv", "gmc-xml", "shopify"]
FEED_FORMATS: tuple[FeedFormat, ...] = get_args(FeedFormat)
_HEAD = 8192


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
    return _clean(record.get("product_id"))


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


def detect_format(path: Path, head: str) -> FeedFormat:
    """A feed's format from its first bytes (``head``), its suffix only for JSONL."""
    text = head.lstrip("\ufeff").lstrip()
    if text.startswith("<"):
        if merchant.is_merchant_xml(text):
            return "gmc-xml"
        raise InvalidInput(
            f"{path}: XML that is not a Merchant Center feed (no {merchant.GOOGLE_NS} namespace)",
            code="feed_format_unknown",
        )
    if text.startswith(("{", "[")) or path.suffix.lower() in (".jsonl", ".ndjson"):
        return "jsonl"
    header = text.splitlines()[0] if text else ""
    if "\t" in header and merchant.is_merchant_header(header.split("\t")):
        return "gmc-tsv"
    if shopify.is_shopify_header(next(csv.reader([header]), [])):
        return "shopify"
    return "csv"


def read_feed(path: Path, fmt: str | None = None, currency: str = "EUR") -> ParsedFeed:
    """Parse a catalog file in ``fmt`` (one of :data:`FEED_FORMATS`; detected from the
    content when None). Prices of the Merchant Center and Shopify feeds must be in the
    store's ``currency``."""
    if not path.is_file():
        raise InvalidInput(f"feed file {path} does not exist", code="file_not_found")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        if fmt is None:
            fmt = detect_format(path, fh.read(_HEAD))
            fh.seek(0)
        if fmt == "csv":
            return _read_csv(path, fh)
        if fmt == "jsonl":
            return _validate_jsonl(fh)
        if fmt == "gmc-tsv":
            return validate_mapped(merchant.read_text(fh, currency))
        if fmt == "shopify":
            return validate_mapped(shopify.read_shopify(fh, currency))
    if fmt == "gmc-xml":
        return validate_mapped(merchant.read_xml(path, currency))
    raise InvalidInput(
        f"unknown feed format {fmt!r} (one of {', '.join(FEED_FORMATS)})",
        code="feed_format_unknown",
    )


def _read_csv(path: Path, fh: Iterable[str]) -> ParsedFeed:
    reader = csv.DictReader(fh)
    if not reader.fieldnames or "product_id" not in reader.fieldnames:
        raise InvalidInput(
            f"{path}: CSV header must include product_id (or be a Merchant Center or "
            "Shopify header)",
            code="feed_header_invalid",
        )

    def rows() -> Iterator[tuple[int, Any]]:
        # Lines as a text editor counts them (the header is line 1); a quoted cell
        # spanning lines puts its row at the line it starts on.
        line = reader.line_num + 1
        for row in reader:
            start, line = line, reader.line_num + 1
            yield start, _csv_row_to_record(row)

    return validate_records(rows())


def validate_mapped(rows: Iterable[MappedRow]) -> ParsedFeed:
    """Validate what a format's reader mapped; its failures join the rejections in line order."""
    records: list[tuple[int, Any]] = []
    failed: list[RejectedRow] = []
    for line, row in rows:
        if isinstance(row, RowFailure):
            failed.append(RejectedRow(line, _clean(row.product_id), row.errors))
        else:
            records.append((line, row))
    feed = validate_records(records)
    feed.rejected = sorted([*feed.rejected, *failed], key=lambda r: r.row)
    return feed


def _clean(product_id: object) -> str | None:
    return product_id if isinstance(product_id, str) and is_clean_id(product_id) else None


def _validate_jsonl(lines: Iterable[str]) -> ParsedFeed:
    def rows() -> Iterator[MappedRow]:
        for row_no, record in _jsonl_records(lines):
            if isinstance(record, _Unparsable):
                error = RowError("(row)", "invalid_json", record.reason)
                yield row_no, RowFailure(None, (error,))
            else:
                yield row_no, record

    return validate_mapped(rows())
