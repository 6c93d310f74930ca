"""DIGINETICA (CIKM Cup 2016, partial) into the catalog and events.

* ``sample_train-item-views.csv`` → ``product_view``; ``train-purchases.csv`` →
  one ``purchase`` per order number with one line per item.
* Times: ``eventdate`` (a day) plus ``timeframe`` (milliseconds since the
  session started) — the data set's own convention, read as UTC.
* ``userId`` (when not ``NA``) is the customer and anonymous id; otherwise the
  anonymous id is ``dn-session-<sessionId>``. Sessions are ``dn-<sessionId>``.
* The data set has no prices: purchase lines carry ``unit_price`` 0 and revenue
  0 (EUR), so they count as purchases but never as revenue.
* The catalog gets the products the events name, with their category id as
  the category path (``product-categories.csv``); titles are ``Item <id>``.
"""

from __future__ import annotations

import csv
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shelfwise.catalog.model import Product
from shelfwise.contracts.checks import Problem
from shelfwise.contracts.ingest import gc_paused
from shelfwise.contracts.quarantine import Rejection
from shelfwise.importers.base import SourceData

NAME = "diginetica"
DATA_DIR = Path("diginetica")


def _at(day: str, timeframe: str) -> datetime:
    start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    return start + timedelta(milliseconds=int(timeframe))


def _who(session: str, user: str) -> dict[str, Any]:
    known = user not in ("", "NA")
    return {
        "anonymous_id": user if known else f"dn-session-{session}",
        "customer_id": user if known else None,
        "session_id": f"dn-{session}",
    }


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter=";"))


def read_diginetica(folder: Path) -> SourceData:
    with gc_paused():
        return _read(folder)


def _read(folder: Path) -> SourceData:
    views = _rows(folder / "sample_train-item-views.csv")
    buys = _rows(folder / "train-purchases.csv")
    events: list[dict[str, Any]] = []
    rejections: list[Rejection] = []
    reasons: Counter[str] = Counter()
    for n, r in enumerate(views, start=1):
        if not r["item_id"] or not r["timeframe"].isdigit():
            reasons["malformed_row"] += 1
            rejections.append(Rejection(r, (Problem("malformed_row", "", "no item or time"),)))
            continue
        events.append(
            {
                "type": "product_view",
                "event_id": f"{NAME}:view:{n}",
                "occurred_at": _at(r["eventdate"], r["timeframe"]),
                "product_id": r["item_id"],
                **_who(r["session_id"], r["user_id"]),
            }
        )
    orders: dict[str, dict[str, Any]] = {}
    for r in buys:
        if not r["itemId"] or not r["timeframe"].isdigit():
            reasons["malformed_row"] += 1
            rejections.append(Rejection(r, (Problem("malformed_row", "", "no item or time"),)))
            continue
        order = orders.setdefault(
            r["ordernumber"],
            {
                "type": "purchase",
                "event_id": f"{NAME}:order:{r['ordernumber']}",
                "order_id": r["ordernumber"],
                "occurred_at": _at(r["eventdate"], r["timeframe"]),
                "currency": "EUR",
                "revenue": 0.0,
                "lines": [],
                **_who(r["sessionId"], r["userId"]),
            },
        )
        order["lines"].append({"product_id": r["itemId"], "quantity": 1, "unit_price": 0.0})
    events.extend(orders.values())
    named = {e["product_id"] for e in events if "product_id" in e}
    named |= {ln["product_id"] for o in orders.values() for ln in o["lines"]}
    categories = {r["itemId"]: r["categoryId"] for r in _rows(folder / "product-categories.csv")}
    products = [
        Product(
            product_id=pid,
            title=f"Item {pid}",
            category_path=f"c{categories[pid]}" if pid in categories else None,
        )
        for pid in sorted(named)
    ]
    return SourceData(NAME, len(views) + len(buys), products, events, rejections, reasons)
