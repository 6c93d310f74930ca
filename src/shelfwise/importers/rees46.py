"""REES46 multi-category store (first rows of October 2019) into the catalog and events.

``view`` → ``product_view``, ``cart`` → ``add_to_cart``, ``purchase`` → a
one-line ``purchase`` (the data set has no order ids: the order id is the
session plus the minute, so lines bought together form one order). Prices are
taken as USD (the data set's store is priced in dollars). ``user_id`` is the
anonymous id, ``user_session`` the session. The catalog gets one product per
id with brand, category (``category_code`` dotted path, else the numeric
category id) and the latest positive price; there are no titles, so the title
is brand + category leaf + id. Rows with an unknown event type or no product
id are refused with a reason.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Any

from shelfwise.catalog.model import Product
from shelfwise.contracts.checks import Problem
from shelfwise.contracts.ingest import gc_paused
from shelfwise.contracts.quarantine import Rejection
from shelfwise.importers.base import SourceData

NAME = "rees46"
DATA_FILE = Path("rees46_sample") / "2019-Oct_head.csv"
CURRENCY = "USD"


def _time(value: str) -> str:
    """``2019-10-01 00:00:00 UTC`` -> ISO 8601 with an explicit offset."""
    return value.replace(" UTC", "+00:00").replace(" ", "T", 1)


def read_rees46(path: Path) -> SourceData:
    with gc_paused(), path.open(newline="", encoding="utf-8") as fh:
        return _read(csv.DictReader(fh))


def _read(rows: csv.DictReader[str]) -> SourceData:
    events: list[dict[str, Any]] = []
    rejections: list[Rejection] = []
    reasons: Counter[str] = Counter()
    catalog: dict[str, dict[str, Any]] = {}
    n = 0
    for n, row in enumerate(rows, start=1):
        kind, pid = row["event_type"], row["product_id"].strip()
        why = None if kind in ("view", "cart", "purchase") else "unknown_event_type"
        why = why or (None if pid else "missing_product_id")
        if why is not None:
            reasons[why] += 1
            rejections.append(
                Rejection(
                    row,
                    (
                        Problem(
                            why,
                            "event_type" if "type" in why else "product_id",
                            why.replace("_", " "),
                        ),
                    ),
                )
            )
            continue
        price = float(row["price"]) if row["price"] else None
        item = catalog.setdefault(pid, {"product_id": pid})
        if row["brand"]:
            item["brand"] = row["brand"]
        item["category_path"] = row["category_code"].replace(".", "/") or f"c{row['category_id']}"
        if price:
            item["price"] = price
        at = _time(row["event_time"])
        base: dict[str, Any] = {
            "event_id": f"{NAME}:{n}",
            "occurred_at": at,
            "anonymous_id": row["user_id"],
            "session_id": row["user_session"] or None,
        }
        if kind == "view":
            events.append(
                {
                    **base,
                    "type": "product_view",
                    "product_id": pid,
                    "price": price,
                    "currency": CURRENCY if price is not None else None,
                }
            )
        elif kind == "cart":
            events.append(
                {
                    **base,
                    "type": "add_to_cart",
                    "product_id": pid,
                    "quantity": 1,
                    "unit_price": price,
                    "currency": CURRENCY if price is not None else None,
                }
            )
        else:
            events.append(
                {
                    **base,
                    "type": "purchase",
                    "order_id": f"{row['user_session'] or row['user_id']}:{at[:16]}:{pid}",
                    "currency": CURRENCY,
                    "revenue": price or 0.0,
                    "lines": [{"product_id": pid, "quantity": 1, "unit_price": price or 0.0}],
                }
            )
    products = [
        Product(
            product_id=pid,
            title=" ".join(
                x for x in (d.get("brand"), d["category_path"].split("/")[-1], pid) if x
            ),
            brand=d.get("brand"),
            category_path=d["category_path"],
            price=d.get("price"),
            currency=CURRENCY if d.get("price") else None,
        )
        for pid, d in catalog.items()
    ]
    return SourceData(NAME, n, products, events, rejections, reasons)
