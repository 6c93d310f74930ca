"""What every feed reader shares: a row's rejection, and the cells all feeds spell alike.

A feed reader turns each line of its format into either a product record (the
fields of :class:`~shelfwise.catalog.model.Product`, not yet validated) or a
:class:`RowFailure` with stable codes; :func:`shelfwise.catalog.feed.validate_mapped`
validates the records and reports both kinds of bad row in line order.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shelfwise.catalog.model import CURRENCIES, Availability


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


@dataclass(frozen=True)
class RowFailure:
    """A row a reader could not map to a product record."""

    product_id: str | None
    errors: tuple[RowError, ...]


# (line where the row starts, record or failure)
MappedRow = tuple[int, "dict[str, Any] | RowFailure"]


class CellError(ValueError):
    """One cell a reader cannot map; collected into the row's :class:`RowFailure`."""

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message)
        self.error = RowError(field, code, message)


class Cells:
    """Maps a row's cells one by one, collecting every cell's error (not just the first)."""

    def __init__(self) -> None:
        self.errors: list[RowError] = []

    def put(self, target: dict[str, Any], key: str, parse: Callable[[], Any]) -> None:
        """``target[key] = parse()`` unless it is None, or note why the cell is bad."""
        try:
            value = parse()
        except CellError as e:
            self.errors.append(e.error)
            return
        if value is not None:
            target[key] = value


_MONEY = re.compile(r"^\s*(?P<amount>[0-9]+(?:[.,][0-9]{1,4})?)\s*(?P<currency>[A-Za-z]{3})?\s*$")


def parse_money(field: str, text: str, currency: str, *, zero: bool = False) -> float:
    """``"12.99 EUR"`` -> 12.99 in the store's ``currency``. A bare amount is in the store's
    currency; another code is ``currency_mismatch`` (shelfwise holds one currency per
    store and does not convert). Only a ``zero`` amount may be 0 (a cost)."""
    match = _MONEY.match(text)
    if match is None:
        raise CellError(field, "price_invalid", f"{text!r} is not an amount like '12.99 EUR'")
    code = (match["currency"] or currency).upper()
    if code not in CURRENCIES:
        raise CellError(field, "currency_unknown", f"unknown currency code {code!r}")
    if code != currency:
        raise CellError(
            field,
            "currency_mismatch",
            f"price is in {code}, the store prices in {currency} (convert the feed)",
        )
    amount = float(match["amount"].replace(",", "."))
    if amount < 0 or (amount == 0 and not zero):
        raise CellError(field, "price_invalid", f"{text!r} is not a positive amount")
    return amount


def parse_count(field: str, text: str, code: str = "count_invalid") -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise CellError(field, code, f"{text!r} is not a whole number") from None


# Google's values, with the spelling of older feeds ("in stock") accepted too. A
# backorder is orderable now and ships later: for recommendations that is a preorder.
_AVAILABILITY: dict[str, Availability] = {
    "in_stock": "in_stock",
    "out_of_stock": "out_of_stock",
    "preorder": "preorder",
    "backorder": "preorder",
}


def parse_availability(field: str, text: str) -> Availability:
    value = _AVAILABILITY.get(re.sub(r"[\s-]+", "_", text.strip().lower()))
    if value is None:
        raise CellError(
            field,
            "availability_invalid",
            f"{text!r} is not one of in_stock, out_of_stock, preorder, backorder",
        )
    return value
