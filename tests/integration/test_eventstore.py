"""Event store contract on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from shelfwise.config import Settings
from shelfwise.contracts import EVENT_TYPES, Event, EventStore, parse_event
from shelfwise.contracts.eventstore import COLUMN_FIELDS
from shelfwise.contracts.schemas import VALID
from shelfwise.runtime import Runtime
from shelfwise.store.tables import events, interactions

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


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_every_event_reads_back_whole_from_columns_and_payload(
    runtime: Runtime, event_type: str
) -> None:
    store = EventStore(runtime.db)
    event = parse_event(VALID[event_type])
    assert store.append([event]) == [True]
    assert store.load([event.event_id, "missing"]) == [event]
    with runtime.db.engine.connect() as conn:
        payload = conn.execute(select(events.c.payload)).scalar_one()
    # only the fields without a column of their own are in the payload
    assert set(payload) == set(event.model_dump(exclude_none=True)) - COLUMN_FIELDS


def test_payload_holds_only_what_has_no_column(runtime: Runtime) -> None:
    store = EventStore(runtime.db)
    assert store.append([parse_event(e) for e in _events()]) == [True, True, True]
    with runtime.db.engine.connect() as conn:
        rows = dict(conn.execute(select(events.c.event_id, events.c.payload)).all())
    assert rows == {
        "e1": {"product_id": "P1"},
        "e2": {
            "currency": "EUR",
            "revenue": 30.0,
            "lines": [
                {"product_id": "P1", "quantity": 1, "unit_price": 10.0, "rec_id": "r1"},
                {"product_id": "P2", "quantity": 2, "unit_price": 10.0},
            ],
        },
        "e3": {},
    }


def test_a_new_sqlite_store_uses_16k_pages_in_wal_mode(sqlite_settings: Settings) -> None:
    rt = Runtime.open(sqlite_settings, load=False)
    try:
        with rt.db.engine.connect() as conn:
            pragmas = [
                conn.exec_driver_sql(f"PRAGMA {p}").scalar()
                for p in ("page_size", "journal_mode", "synchronous")
            ]
    finally:
        rt.close()
    assert pragmas == [16384, "wal", 1]  # synchronous=NORMAL


def test_a_batch_mixing_stored_and_new_events_stores_only_the_new(runtime: Runtime) -> None:
    store = EventStore(runtime.db)
    e1, e2, e3 = (parse_event(e) for e in _events())
    assert store.append([e1]) == [True]
    assert store.append([e2, e1, e3, e2]) == [True, False, True, False]
    assert store.count() == 3
    with runtime.db.engine.connect() as conn:
        lines = conn.execute(
            select(interactions.c.event_id, interactions.c.line).order_by(
                interactions.c.event_id, interactions.c.line
            )
        ).all()
    assert [tuple(r) for r in lines] == [("e1", 0), ("e2", 0), ("e2", 1)]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    stored=st.lists(st.integers(0, 30), max_size=20),
    batch=st.lists(st.integers(0, 30), max_size=40),
)
def test_fresh_is_exactly_the_first_sighting_of_an_unstored_id(
    sqlite_settings: Settings, stored: list[int], batch: list[int]
) -> None:
    rt = Runtime.open(sqlite_settings, load=False)
    try:
        store = EventStore(rt.db)
        prefix = uuid.uuid4().hex[:8]

        def view(n: int) -> Event:
            return parse_event({**_events()[0], "event_id": f"{prefix}-{n}"})

        store.append([view(n) for n in stored])
        expected = []
        seen = set(stored)
        for n in batch:
            expected.append(n not in seen)
            seen.add(n)
        assert store.append([view(n) for n in batch]) == expected
        with rt.db.engine.connect() as conn:
            ids = conn.execute(
                select(interactions.c.event_id).where(interactions.c.event_id.like(f"{prefix}-%"))
            ).scalars()
            assert sorted(ids) == sorted(f"{prefix}-{n}" for n in seen)
    finally:
        rt.close()
