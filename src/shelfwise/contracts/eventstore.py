"""The append-only event store: idempotent by ``event_id``, one transaction per batch.

``append`` returns only after the batch is committed, so a caller that
acknowledges what ``append`` reported stored never acknowledges a lost event.
Validation, verdicts and quarantine sit above this (``contracts.ingest``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, select

from shelfwise.contracts.events import Event
from shelfwise.store.engine import Database
from shelfwise.store.tables import events
from shelfwise.store.types import utcnow

_CHUNK = 900  # below SQLite's bound-parameter limit for an IN list


def interaction_rows(e: Event) -> list[dict[str, Any]]:
    """One row per product the event is about (none for page views and logins)."""
    base = {
        "event_id": e.event_id,
        "type": e.type,
        "occurred_at": e.occurred_at,
        "anonymous_id": e.anonymous_id,
        "customer_id": e.customer_id,
        "session_id": e.session_id,
        "placement": getattr(e, "placement", None),
    }
    none = {"unit_price": None, "position": None, "rec_id": None}
    match e.type:
        case "product_view":
            return [
                {
                    **base,
                    **none,
                    "line": 0,
                    "product_id": e.product_id,
                    "quantity": 1,
                    "unit_price": e.price,
                    "rec_id": e.rec_id,
                }
            ]
        case "add_to_cart":
            return [
                {
                    **base,
                    **none,
                    "line": 0,
                    "product_id": e.product_id,
                    "quantity": e.quantity,
                    "unit_price": e.unit_price,
                    "rec_id": e.rec_id,
                }
            ]
        case "remove_from_cart":
            return [{**base, **none, "line": 0, "product_id": e.product_id, "quantity": e.quantity}]
        case "purchase":
            return [
                {
                    **base,
                    **none,
                    "line": i,
                    "product_id": ln.product_id,
                    "quantity": ln.quantity,
                    "unit_price": ln.unit_price,
                    "rec_id": ln.rec_id,
                }
                for i, ln in enumerate(e.lines)
            ]
        case "return":
            return [
                {
                    **base,
                    **none,
                    "line": i,
                    "product_id": ln.product_id,
                    "quantity": ln.quantity,
                    "unit_price": ln.unit_price,
                }
                for i, ln in enumerate(e.lines)
            ]
        case "rec_impression":
            return [
                {
                    **base,
                    **none,
                    "line": i,
                    "product_id": it.product_id,
                    "quantity": 1,
                    "position": it.position,
                    "rec_id": e.rec_id,
                }
                for i, it in enumerate(e.items)
            ]
        case "rec_click":
            return [
                {
                    **base,
                    **none,
                    "line": 0,
                    "product_id": e.product_id,
                    "quantity": 1,
                    "position": e.position,
                    "rec_id": e.rec_id,
                }
            ]
        case _:
            return []


_EVENT_COLS = (
    "event_id",
    "type",
    "schema_version",
    "occurred_at",
    "received_at",
    "anonymous_id",
    "customer_id",
    "session_id",
    "device_id",
    "platform",
    "os",
    "browser",
    "app_version",
    "placement",
    "rec_id",
    "order_id",
    "payload",
)
_ITEM_COLS = (
    "event_id",
    "line",
    "type",
    "occurred_at",
    "anonymous_id",
    "customer_id",
    "session_id",
    "product_id",
    "quantity",
    "unit_price",
    "position",
    "placement",
    "rec_id",
)


def _sqlite_time(value: datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime stores: naive UTC with microseconds."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _insert_sql(table: str, cols: tuple[str, ...], backend: str, json_col: str | None) -> str:
    mark = "?" if backend == "sqlite" else "%s"
    values = [f"{mark}::jsonb" if c == json_col and backend != "sqlite" else mark for c in cols]
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(values)})"


class EventStore:
    """Writes go straight to the driver's ``executemany`` with pre-serialised values:
    the SQLAlchemy Core path costs several times more per row than the database does."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._events_sql = _insert_sql("events", _EVENT_COLS, db.backend, "payload")
        self._items_sql = _insert_sql("interactions", _ITEM_COLS, db.backend, None)

    def append(self, batch: Sequence[Event]) -> list[bool]:
        """Store the events not stored before; ``result[i]`` is False for a duplicate."""
        with self.db.engine.begin() as conn:
            return self.append_in(conn, batch)

    def append_in(self, conn: Connection, batch: Sequence[Event]) -> list[bool]:
        """As :meth:`append`, inside the caller's transaction."""
        ids = [e.event_id for e in batch]
        known: set[str] = set()
        for start in range(0, len(ids), _CHUNK):
            known.update(
                conn.execute(
                    select(events.c.event_id).where(
                        events.c.event_id.in_(ids[start : start + _CHUNK])
                    )
                ).scalars()
            )
        sqlite = self.db.backend == "sqlite"
        now = utcnow()
        received: str | datetime = _sqlite_time(now) if sqlite else now
        times: dict[datetime, str | datetime] = {}
        fresh: list[bool] = []
        rows: list[tuple[Any, ...]] = []
        items: list[tuple[Any, ...]] = []
        for e in batch:
            if e.event_id in known:
                fresh.append(False)
                continue
            known.add(e.event_id)
            fresh.append(True)
            at = times.get(e.occurred_at)
            if at is None:
                at = times[e.occurred_at] = _sqlite_time(e.occurred_at) if sqlite else e.occurred_at
            extra = e.__dict__
            rows.append(
                (
                    e.event_id,
                    e.type,
                    e.schema_version,
                    at,
                    received,
                    e.anonymous_id,
                    e.customer_id,
                    e.session_id,
                    e.device_id,
                    e.platform,
                    e.os,
                    e.browser,
                    e.app_version,
                    extra.get("placement"),
                    extra.get("rec_id"),
                    extra.get("order_id"),
                    e.model_dump_json(exclude_none=True),
                )
            )
            for r in interaction_rows(e):
                items.append(
                    (
                        r["event_id"],
                        r["line"],
                        r["type"],
                        at,
                        r["anonymous_id"],
                        r["customer_id"],
                        r["session_id"],
                        r["product_id"],
                        r["quantity"],
                        r["unit_price"],
                        r["position"],
                        r["placement"],
                        r["rec_id"],
                    )
                )
        if rows:
            conn.exec_driver_sql(self._events_sql, rows)
        if items:
            conn.exec_driver_sql(self._items_sql, items)
        return fresh

    def count(self) -> int:
        with self.db.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(events)).scalar_one())
