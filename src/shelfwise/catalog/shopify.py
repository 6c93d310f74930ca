"""Shopify's product CSV export -> one product record per variant.

A Shopify product spans several rows sharing its ``Handle``: the first carries the
product (Title, Body (HTML), Vendor, Type, Tags, Status, ...), each further row one
more variant (its options, SKU, price, inventory) or only one more image. The
mapping (docs/catalog.md has the table):

- each variant -> a product: ``Variant SKU`` (else ``<handle>:<option values>``) ->
  ``product_id``; ``Handle`` -> ``variant_group``; ``Title`` (+ `` - `` and the
  option values, unless the only option is Shopify's ``Default Title``) -> ``title``;
- ``Body (HTML)`` as text -> ``description``; ``Vendor`` -> ``brand``; ``Type`` ->
  ``category_path``, else ``Product Category``; ``Tags`` -> ``tags``;
- ``Variant Price`` -> ``price`` in the store's currency; ``Cost per item`` ->
  ``cost``; ``Variant Compare At Price`` -> ``attributes.compare_at_price``;
- ``Variant Inventory Qty`` -> ``stock_qty`` when a tracker counts it (an oversold,
  negative count is 0); none left with ``Variant Inventory Policy`` ``continue`` is a
  preorder (Shopify keeps selling);
- ``Status`` ``draft``/``archived`` -> inactive; ``Variant Image``, else the product's
  first ``Image Src`` -> ``image_url``; options and barcode -> ``attributes``.

A variant row whose product row is bad, or missing, is rejected with its own line.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import IO, Any

from shelfwise.catalog.rows import (
    CellError,
    Cells,
    MappedRow,
    RowError,
    RowFailure,
    parse_count,
    parse_money,
)
from shelfwise.errors import InvalidInput

_OPTIONS = ((f"Option{i} Name", f"Option{i} Value") for i in (1, 2, 3))
OPTION_COLUMNS = tuple(_OPTIONS)
_STATUSES = {"active": True, "draft": False, "archived": False}
_VARIANT_COLUMNS = ("Variant SKU", "Variant Price", "Option1 Value", "Variant Inventory Qty")


def is_shopify_header(columns: Iterable[str]) -> bool:
    names = {c.strip() for c in columns}
    return "Handle" in names and bool(names & {"Variant SKU", "Variant Price"})


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("p", "br", "li", "div"):
            self.parts.append(" ")


def html_to_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    return " ".join("".join(parser.parts).split())


@dataclass
class _Product:
    """The product row of a handle: what its variant rows inherit."""

    line: int
    cells: dict[str, str]
    failure: RowFailure | None
    images: list[str] = field(default_factory=list)
    variants: list[tuple[int, dict[str, str]]] = field(default_factory=list)


def _product_fields(cells: dict[str, str]) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for source, target in (("Vendor", "brand"), ("Title", "title")):
        if cells.get(source):
            record[target] = cells[source]
    if cells.get("Body (HTML)"):
        record["description"] = html_to_text(cells["Body (HTML)"]) or None
    category = cells.get("Type") or cells.get("Product Category")
    if category:
        record["category_path"] = category
    if cells.get("Tags"):
        record["tags"] = [t for t in cells["Tags"].split(",") if t.strip()]
    status = cells.get("Status", "").lower()
    if status:
        if status not in _STATUSES:
            raise CellError(
                "Status", "status_invalid", f"{status!r} is not active, draft or archived"
            )
        record["active"] = _STATUSES[status]
    return record


def _variant(
    product: _Product, base: dict[str, Any], cells: dict[str, str], currency: str
) -> dict[str, Any] | RowFailure:
    record = dict(base)
    handle = product.cells["Handle"]
    record["variant_group"] = handle
    attributes: dict[str, Any] = {}
    values: list[str] = []
    for name_col, value_col in OPTION_COLUMNS:
        name = product.cells.get(name_col) or ""
        value = cells.get(value_col) or ""
        if value and not (name == "Title" and value == "Default Title"):
            values.append(value)
            attributes[name or value_col] = value
    record["product_id"] = cells.get("Variant SKU") or ":".join([handle, *values])
    if values and "title" in record:
        record["title"] = f"{record['title']} - {' / '.join(values)}"
    row = Cells()
    if cells.get("Variant Price"):
        row.put(
            record, "price", lambda: parse_money("Variant Price", cells["Variant Price"], currency)
        )
        record["currency"] = currency
    if cells.get("Cost per item"):
        row.put(
            record,
            "cost",
            lambda: parse_money("Cost per item", cells["Cost per item"], currency, zero=True),
        )
    if cells.get("Variant Compare At Price"):
        compare = cells["Variant Compare At Price"]
        row.put(
            attributes,
            "compare_at_price",
            lambda: parse_money("Variant Compare At Price", compare, currency),
        )
    if cells.get("Variant Inventory Tracker") and cells.get("Variant Inventory Qty"):
        # An oversold variant's count goes negative in Shopify: none left.
        count = cells["Variant Inventory Qty"]
        row.put(record, "stock_qty", lambda: max(0, parse_count("Variant Inventory Qty", count)))
        keeps_selling = cells.get("Variant Inventory Policy", "").lower() == "continue"
        if record.get("stock_qty") == 0 and keeps_selling:
            record["availability"] = "preorder"
    if row.errors:
        return RowFailure(record["product_id"], tuple(row.errors))
    if cells.get("Variant Barcode"):
        attributes["barcode"] = cells["Variant Barcode"]
    image = cells.get("Variant Image") or (product.images[0] if product.images else None)
    if image:
        record["image_url"] = image
    if attributes:
        record["attributes"] = attributes
    return record


def _rows(fh: IO[str]) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(fh)
    if reader.fieldnames is None or not is_shopify_header(reader.fieldnames):
        raise InvalidInput(
            "a Shopify product CSV needs Handle and Variant SKU or Variant Price columns",
            code="feed_header_invalid",
        )
    line = reader.line_num + 1
    for row in reader:
        # A quoted Body (HTML) spans lines: a row is reported at the line it starts on.
        start, line = line, reader.line_num + 1
        if None in row:
            yield start, {"__extra__": "1"}
            continue
        yield start, {k.strip(): (v or "").strip() for k, v in row.items()}


def read_shopify(fh: IO[str], currency: str) -> Iterator[MappedRow]:
    """Variants in the order of their lines; rejected lines at their own line."""
    products: dict[str, _Product] = {}
    orphans: list[MappedRow] = []
    for line, cells in _rows(fh):
        if "__extra__" in cells:
            error = RowError("(row)", "too_many_cells", "row has more cells than the header")
            orphans.append((line, RowFailure(None, (error,))))
            continue
        handle = cells.get("Handle", "")
        if not handle:
            error = RowError("Handle", "handle_missing", "a row needs the product's Handle")
            orphans.append((line, RowFailure(cells.get("Variant SKU") or None, (error,))))
            continue
        product = products.get(handle)
        if product is None:
            if not cells.get("Title"):
                error = RowError(
                    "Title", "product_row_missing", f"no product row (with a Title) for {handle!r}"
                )
                orphans.append((line, RowFailure(cells.get("Variant SKU") or None, (error,))))
                continue
            product = products[handle] = _Product(line, cells, None)
        if cells.get("Image Src"):
            product.images.append(cells["Image Src"])
        if line == product.line or any(cells.get(c) for c in _VARIANT_COLUMNS):
            product.variants.append((line, cells))
    yield from _variants(products.values(), orphans, currency)


def _variants(
    products: Iterable[_Product], orphans: list[MappedRow], currency: str
) -> Iterator[MappedRow]:
    out = list(orphans)
    for product in products:
        try:
            base = _product_fields(product.cells)
        except CellError as e:
            for line, cells in product.variants:
                out.append((line, RowFailure(cells.get("Variant SKU") or None, (e.error,))))
            continue
        for line, cells in product.variants:
            out.append((line, _variant(product, base, cells, currency)))
    yield from sorted(out, key=lambda r: r[0])
