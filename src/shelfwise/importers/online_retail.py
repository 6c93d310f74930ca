"""UCI Online Retail (a UK gift shop, 2010-12 → 2011-12) into the catalog and events.

* Each invoice becomes one ``purchase`` (order id = invoice number, one line per
  invoice row); an invoice numbered ``C…`` is a cancellation and becomes a
  ``return`` with positive quantities.
* ``CustomerID`` becomes both ``customer_id`` and ``anonymous_id``; a guest
  checkout (no customer) gets the anonymous id ``guest-<invoice>``.
* Invoice times are Europe/London wall-clock times, converted to UTC.
* Rows that are not a sale of merchandise are refused with a reason and
  quarantined (grouped per invoice): stock codes that are not ``NNNNN[A-Z]``
  (postage, manual, bank charges, fees, vouchers …) ``non_merchandise``; a
  non-positive quantity on a sale ``stock_adjustment``; a positive quantity on
  a cancellation ``cancellation_not_negative``; a negative price
  ``negative_price``.
* The catalog gets one product per stock code: the latest description as the
  title, the latest positive price (GBP), the five-digit stem of a lettered
  code as its variant group.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from shelfwise.catalog.model import Product
from shelfwise.contracts.checks import Problem
from shelfwise.contracts.ingest import gc_paused
from shelfwise.contracts.quarantine import Rejection
from shelfwise.importers.base import SourceData

NAME = "online_retail"
MERCHANDISE = re.compile(r"^\d{5}[A-Z]{0,3}$")
DATA_FILE = Path("online_retail") / "online_retail.parquet"


def _epoch_micros(table: pa.Table) -> list[int]:
    local = pc.assume_timezone(
        table.column("InvoiceDate"),
        "Europe/London",
        ambiguous="earliest",
        nonexistent="latest",
    )
    return pc.cast(local, pa.int64()).to_pylist()  # type: ignore[no-any-return]


def _reasons(table: pa.Table, codes: pa.ChunkedArray) -> list[str | None]:
    """Why each row is refused (None = a sale or return of merchandise), vectorised."""
    qty = table.column("Quantity")
    cancel = pc.starts_with(table.column("InvoiceNo"), "C")
    merch = pc.match_substring_regex(codes, MERCHANDISE.pattern)
    why = pc.case_when(
        pc.make_struct(
            pc.invert(merch),
            pc.less(table.column("UnitPrice"), 0),
            pc.and_(cancel, pc.greater_equal(qty, 0)),
            pc.and_(pc.invert(cancel), pc.less_equal(qty, 0)),
        ),
        "non_merchandise",
        "negative_price",
        "cancellation_not_negative",
        "stock_adjustment",
    )
    return why.to_pylist()  # type: ignore[no-any-return]


def read_online_retail(path: Path) -> SourceData:
    with gc_paused():
        return _read(path)


def _read(path: Path) -> SourceData:
    table = pq.read_table(path)
    invoices = table.column("InvoiceNo").to_pylist()
    raw_codes = table.column("StockCode")
    codes_arr = pc.utf8_upper(pc.utf8_trim_whitespace(raw_codes))
    refusals = _reasons(table, codes_arr)
    codes = codes_arr.to_pylist()
    raw_code_list = raw_codes.to_pylist()
    descs = table.column("Description").to_pylist()
    qtys = table.column("Quantity").to_pylist()
    prices = table.column("UnitPrice").to_pylist()
    customers = table.column("CustomerID").to_pylist()
    micros = _epoch_micros(table)

    orders: dict[str, dict[str, Any]] = {}
    refused: dict[str, list[tuple[dict[str, Any], str]]] = {}
    titles: dict[str, str] = {}
    latest_price: dict[str, float] = {}
    reasons: Counter[str] = Counter()
    for inv, code, raw_code, why, desc, qty, price, cust, us in zip(
        invoices,
        codes,
        raw_code_list,
        refusals,
        descs,
        qtys,
        prices,
        customers,
        micros,
        strict=True,
    ):
        order = orders.get(inv)
        if order is None:
            order = orders[inv] = {
                "at": us,
                "customer": None if cust is None else str(int(cust)),
                "lines": [],
            }
        if why is not None:
            reasons[why] += 1
            line = {"StockCode": raw_code, "Description": desc, "Quantity": qty}
            refused.setdefault(inv, []).append(({**line, "UnitPrice": price}, why))
            continue
        order["lines"].append({"product_id": code, "quantity": abs(qty), "unit_price": price})
        if desc:
            titles[code] = desc
        else:
            titles.setdefault(code, code)
        if price > 0 and not inv.startswith("C"):
            latest_price[code] = price

    events = [_event(inv, o) for inv, o in orders.items() if o["lines"]]
    rejections = [
        _refusal(inv, lines, orders[inv]["lines"] == []) for inv, lines in refused.items()
    ]
    products = [
        Product(
            product_id=code,
            title=title or code,
            price=latest_price.get(code),
            currency="GBP",
            variant_group=code[:5] if len(code) > 5 else None,
        )
        for code, title in titles.items()
    ]
    return SourceData(NAME, table.num_rows, products, events, rejections, reasons)


def _event(invoice: str, order: dict[str, Any]) -> dict[str, Any]:
    customer = order["customer"]
    common = {
        "event_id": f"{NAME}:{invoice}",
        "occurred_at": datetime.fromtimestamp(order["at"] / 1e6, UTC),
        "anonymous_id": customer or f"guest-{invoice}",
        "customer_id": customer,
        "order_id": invoice,
        "lines": order["lines"],
    }
    if invoice.startswith("C"):
        return {"type": "return", **common}
    revenue = sum(ln["quantity"] * ln["unit_price"] for ln in order["lines"])
    return {"type": "purchase", **common, "currency": "GBP", "revenue": round(revenue, 2)}


def _refusal(invoice: str, lines: list[tuple[dict[str, Any], str]], whole: bool) -> Rejection:
    problems = tuple(
        Problem(
            why, f"rows[{i}].StockCode" if why == "non_merchandise" else f"rows[{i}]", _TEXT[why]
        )
        for i, (_, why) in enumerate(lines)
    )
    raw = {"invoice": invoice, "whole_invoice": whole, "rows": [line for line, _ in lines]}
    kind = "return" if invoice.startswith("C") else "purchase"
    return Rejection(raw, problems, event_id=f"{NAME}:{invoice}" if whole else None, type=kind)


_TEXT = {
    "non_merchandise": "stock code is not merchandise (postage, fee, manual entry, voucher)",
    "negative_price": "unit price is negative (an accounting adjustment)",
    "stock_adjustment": "non-positive quantity on a sale (a stock adjustment, not a purchase)",
    "cancellation_not_negative": "cancellation row with a non-negative quantity",
}
