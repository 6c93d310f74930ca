"""Google Merchant Center product feeds (tab-separated text and RSS/Atom XML) -> product records.

One mapping for both forms (docs/catalog.md has the table):

- ``id`` -> ``product_id``; ``title``, ``description``; ``image_link`` -> ``image_url``;
  ``brand``; ``item_group_id`` -> ``variant_group``;
- ``product_type`` (``"Home > Bedding > Duvets"``; the first when repeated) ->
  ``category_path``, else ``google_product_category`` when it is a path, not a number;
- ``availability`` -> ``availability`` (``backorder`` is a preorder);
- ``price`` (``"12.99 EUR"``) -> ``price`` and ``currency``: the store's currency
  or the row is rejected (``currency_mismatch``); ``sale_price`` (lower than
  ``price``) -> ``attributes.sale_price``;
- ``shipping`` -> ``shipping_sla_days`` = the fastest service's ``max_handling_time``
  + ``max_transit_time`` when it gives a transit time (top-level ``max_handling_time``
  counts when the service has none); a service without times leaves the SLA unknown;
- ``link``, ``google_product_category`` and every other non-empty attribute ->
  ``attributes`` under its Merchant Center name.
"""

from __future__ import annotations

import csv
import re
import xml.sax
import xml.sax.handler
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from shelfwise.catalog.rows import (
    CellError,
    Cells,
    MappedRow,
    RowError,
    RowFailure,
    parse_availability,
    parse_count,
    parse_money,
)
from shelfwise.errors import InvalidInput

GOOGLE_NS = "http://base.google.com/ns/1.0"
# Attributes the mapping consumes; the rest of a row goes to ``attributes``.
_MAPPED = frozenset(
    [
        "id",
        "title",
        "description",
        "image_link",
        "brand",
        "item_group_id",
        "product_type",
        "availability",
        "price",
        "sale_price",
        "shipping",
        "max_handling_time",
        "min_handling_time",
    ]
)
# The text form's default order of a ``shipping`` value's parts (Merchant Center's).
_SHIPPING_PARTS = ("country", "region", "service", "price")
_SHIPPING_HEADER = re.compile(r"^shipping\((?P<parts>[a-z_:]+)\)$")
MAX_ATTRIBUTE_LENGTH = 2000


def is_merchant_header(columns: Iterable[str]) -> bool:
    names = {c.strip().lower() for c in columns}
    return {"id", "title"} <= names and bool(names & {"price", "availability", "link"})


def _shipping_sla(services: list[dict[str, str]], handling: str | None) -> int | None:
    """The fastest service's days from order to door, when its transit time is known."""
    best: int | None = None
    for service in services:
        transit = service.get("max_transit_time")
        if not transit:
            continue
        days = parse_count("shipping", transit, "shipping_invalid")
        handle = service.get("max_handling_time") or handling
        if handle:
            days += parse_count("shipping", handle, "shipping_invalid")
        best = days if best is None else min(best, days)
    return best


def _sale_price(text: str, record: Mapping[str, Any], currency: str) -> float:
    sale = parse_money("sale_price", text, currency)
    if "price" in record and sale >= record["price"]:
        raise CellError(
            "sale_price", "sale_price_not_lower", f"sale price {sale} is not below the price"
        )
    return sale


def map_item(item: Mapping[str, Any], currency: str) -> dict[str, Any] | RowFailure:
    """One Merchant Center item (attribute -> text, ``shipping`` -> list of services)
    -> a product record, or the reasons it is not one."""
    record: dict[str, Any] = {}
    attributes: dict[str, Any] = {}

    def cell(name: str) -> str:
        value = item.get(name)
        return value.strip() if isinstance(value, str) else ""

    for source, target in (
        ("id", "product_id"),
        ("title", "title"),
        ("description", "description"),
        ("image_link", "image_url"),
        ("brand", "brand"),
        ("item_group_id", "variant_group"),
    ):
        if cell(source):
            record[target] = cell(source)
    category = cell("product_type").split(",")[0].strip()
    google_category = cell("google_product_category")
    if not category and google_category and not google_category.isdigit():
        category = google_category
    if category:
        record["category_path"] = category

    row = Cells()
    if cell("availability"):
        row.put(
            record, "availability", lambda: parse_availability("availability", cell("availability"))
        )
    if cell("price"):
        row.put(record, "price", lambda: parse_money("price", cell("price"), currency))
        record["currency"] = currency
    if cell("sale_price"):
        row.put(attributes, "sale_price", lambda: _sale_price(cell("sale_price"), record, currency))
    handling = cell("max_handling_time") or None
    row.put(
        record, "shipping_sla_days", lambda: _shipping_sla(item.get("shipping") or [], handling)
    )
    for name, value in item.items():
        if name in _MAPPED or not isinstance(value, str) or not value.strip():
            continue
        attributes[name] = value.strip()[:MAX_ATTRIBUTE_LENGTH]
    if row.errors:
        return RowFailure(record.get("product_id"), tuple(row.errors))
    if attributes:
        record["attributes"] = attributes
    return record


# -- tab-separated text ------------------------------------------------------------


def _shipping_order(header: str) -> tuple[str, ...] | None:
    """``shipping`` -> the default order; ``shipping(country:price:max_transit_time)``
    -> that order; None for any other column."""
    name = header.strip().lower()
    if name == "shipping":
        return _SHIPPING_PARTS
    match = _SHIPPING_HEADER.match(name)
    return tuple(match["parts"].split(":")) if match else None


def _text_services(value: str, order: tuple[str, ...]) -> list[dict[str, str]]:
    """``"DE::Standard:4.95 EUR:1:2:2:4, DE::Express:9.95 EUR"`` -> one dict per service."""
    services = []
    for entry in value.split(","):
        if not entry.strip():
            continue
        parts = entry.strip().split(":")
        if len(parts) > len(order):
            raise CellError(
                "shipping", "shipping_invalid", f"{entry.strip()!r} has more parts than {order}"
            )
        services.append({k: v.strip() for k, v in zip(order, parts, strict=False) if v.strip()})
    return services


def read_text(fh: IO[str], currency: str) -> Iterator[MappedRow]:
    """A tab-separated Merchant Center feed; lines are counted as a text editor shows them."""
    reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(reader, None)
    if header is None or not is_merchant_header(header):
        raise InvalidInput(
            "a Merchant Center feed needs id, title and price columns", code="feed_header_invalid"
        )
    names = [h.strip().lower() for h in header]
    line = reader.line_num + 1
    for cells in reader:
        start, line = line, reader.line_num + 1
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(names):
            failure = RowError("(row)", "too_many_cells", "row has more cells than the header")
            yield start, RowFailure(None, (failure,))
            continue
        item: dict[str, Any] = {}
        try:
            for name, value in zip(names, cells, strict=False):
                order = _shipping_order(name)
                if order is not None:
                    item.setdefault("shipping", []).extend(_text_services(value, order))
                else:
                    item[name] = value
        except CellError as e:
            yield start, RowFailure(item.get("id") or None, (e.error,))
            continue
        yield start, map_item(item, currency)


# -- XML (RSS 2.0 <item> or Atom <entry>, attributes in the g: namespace) ------------


class _Items(xml.sax.handler.ContentHandler):
    """Collects each ``item``/``entry`` as attribute -> text, with the line it starts on."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[tuple[int, dict[str, Any]]] = []
        self._item: dict[str, Any] | None = None
        self._shipping: dict[str, str] | None = None
        self._text: list[str] = []
        self._locator: Any = None

    def setDocumentLocator(self, locator: Any) -> None:  # noqa: N802 (SAX's name)
        self._locator = locator

    def startElementNS(self, name: tuple[str | None, str], qname: Any, attrs: Any) -> None:  # noqa: N802
        ns, local = name
        if local in ("item", "entry") and ns != GOOGLE_NS:
            self._item = {}
            self.items.append((self._locator.getLineNumber(), self._item))
        elif self._item is not None and ns == GOOGLE_NS and local == "shipping":
            self._shipping = {}
        self._text = []

    def characters(self, content: str) -> None:
        self._text.append(content)

    def endElementNS(self, name: tuple[str | None, str], qname: Any) -> None:  # noqa: N802
        ns, local = name
        text = "".join(self._text).strip()
        self._text = []
        if self._item is None:
            return
        if local in ("item", "entry") and ns != GOOGLE_NS:
            self._item = None
        elif ns == GOOGLE_NS and local == "shipping" and self._shipping is not None:
            self._item.setdefault("shipping", []).append(self._shipping)
            self._shipping = None
        elif ns == GOOGLE_NS and self._shipping is not None:
            self._shipping[local] = text
        elif ns == GOOGLE_NS:
            self._item[local] = text
        elif local in ("title", "description", "link") and text and local not in self._item:
            # The feed's own title/link/description stand in for g:title etc.
            self._item[local] = text


class _NoDoctype(xml.sax.handler.LexicalHandler):
    """A product feed has no DTD; refusing one refuses entity tricks too."""

    def startDTD(self, name: str, public_id: str | None, system_id: str | None) -> None:  # noqa: N802
        raise InvalidInput("a DOCTYPE is not allowed in a feed", code="feed_xml_invalid")


def read_xml(path: Path, currency: str) -> Iterator[MappedRow]:
    """An RSS 2.0 or Atom Merchant Center feed; each item is reported at its start line."""
    handler = _Items()
    parser = xml.sax.make_parser()
    parser.setFeature(xml.sax.handler.feature_namespaces, True)
    parser.setFeature(xml.sax.handler.feature_external_ges, False)
    parser.setProperty(xml.sax.handler.property_lexical_handler, _NoDoctype())
    parser.setContentHandler(handler)
    try:
        parser.parse(str(path))
    except xml.sax.SAXParseException as e:
        raise InvalidInput(
            f"{path}: not well-formed XML at line {e.getLineNumber()}: {e.getMessage()}",
            code="feed_xml_invalid",
        ) from e
    for line, item in handler.items:
        yield line, map_item(item, currency)


def is_merchant_xml(head: str) -> bool:
    return head.lstrip().startswith("<") and GOOGLE_NS in head
