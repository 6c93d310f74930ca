"""The append-only event store: idempotent by ``event_id``, one transaction per batch.

``append`` returns only after the batch is committed, so a caller that
acknowledges what ``append`` reported stored never acknowledges a lost event.
Validation, verdicts and quarantine sit above this (``contracts.ingest``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from shelfwise.contracts.events import Event
from shelfwise.store.engine import Database
from shelfwise.store.tables import events, interactions
from shelfwise.store.types import utcnow

_CHUNK = 900  # below SQLite's bound-parameter limit for an IN list


def _event_row(e: Event, received_at: datetime) -> dict[str, Any]:
    return {
        "event_id": e.event_id,
        "type": e.type,
        "schema_version": e.schema_version,
        "occurred_at": e.occurred_at,
        "received_at": received_at,
        "anonymous_id": e.anonymous_id,
        "customer_id": e.customer_id,
        "session_id": e.session_id,
        "device_id": e.device_id,
        "platform": e.platform,
        "os": e.os,
        "browser": e.browser,
        "app_version": e.app_version,
        "placement": getattr(e, "placement", None),
        "rec_id": getattr(e, "rec_id", None),
        "order_id": getattr(e, "order_id", None),
        "payload": e.model_dump(mode="json", exclude_none=True),
    }


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


class EventStore:
    def __init__(self, db: Database) -> None:
        self.db = db

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
        now = utcnow()
        fresh: list[bool] = []
        rows: list[dict[str, Any]] = []
        items: list[dict[str, Any]] = []
        for e in batch:
            if e.event_id in known:
                fresh.append(False)
                continue
            known.add(e.event_id)
            fresh.append(True)
            rows.append(_event_row(e, now))
            items.extend(interaction_rows(e))
        if rows:
            conn.execute(events.insert(), rows)
        if items:
            conn.execute(interactions.insert(), items)
        return fresh

    def count(self) -> int:
        from sqlalchemy import func

        with self.db.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(events)).scalar_one())
