"""Event store contract on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from shelfwise.contracts import EventStore, parse_event
from shelfwise.runtime import Runtime
from shelfwise.store.tables import interactions

T = datetime(2026, 11, 1, 12, 0, tzinfo=UTC).isoformat()


def _events() -> list[object]:
    return [
        {
            "type": "product_view",
            "event_id": "e1",
            "occurred_at": T,
            "anonymous_id": "a1",
            "product_id": "P1",
        },
        {
            "type": "purchase",
            "event_id": "e2",
            "occurred_at": T,
            "anonymous_id": "a1",
            "order_id": "o1",
            "currency": "EUR",
            "revenue": 30.0,
            "lines": [
                {"product_id": "P1", "quantity": 1, "unit_price": 10.0, "rec_id": "r1"},
                {"product_id": "P2", "quantity": 2, "unit_price": 10.0},
            ],
        },
        {
            "type": "login",
            "event_id": "e3",
            "occurred_at": T,
            "anonymous_id": "a1",
            "customer_id": "c1",
        },
    ]


def test_append_is_idempotent_and_writes_interactions(runtime: Runtime) -> None:
    store = EventStore(runtime.db)
    batch = [parse_event(e) for e in _events()]
    assert store.append(batch) == [True, True, True]
    assert store.append([*batch, batch[0]]) == [False, False, False, False]
    assert store.count() == 3
    with runtime.db.engine.connect() as conn:
        rows = conn.execute(
            select(
                interactions.c.event_id,
                interactions.c.line,
                interactions.c.product_id,
                interactions.c.quantity,
                interactions.c.rec_id,
            ).order_by(interactions.c.event_id, interactions.c.line)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("e1", 0, "P1", 1, None),
        ("e2", 0, "P1", 1, "r1"),
        ("e2", 1, "P2", 2, None),
    ]
