"""The ingestion path: exact verdicts, durable storage, quarantine and replay (SQLite + PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from shelfwise.catalog import Product
from shelfwise.contracts.ingest import Ingestor
from shelfwise.runtime import Runtime
from shelfwise.store.tables import quarantine

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
T = "2026-11-01T12:00:00+00:00"


def _view(eid: str, pid: str = "P1", **kw: Any) -> dict[str, Any]:
    return {
        "type": "product_view",
        "event_id": eid,
        "occurred_at": T,
        "anonymous_id": "a1",
        "product_id": pid,
        **kw,
    }


def _purchase(eid: str, price: float = 10.0, revenue: float = 20.0, **kw: Any) -> dict[str, Any]:
    return {
        "type": "purchase",
        "event_id": eid,
        "occurred_at": T,
        "anonymous_id": "a1",
        "order_id": f"o-{eid}",
        "currency": "eur",
        "revenue": revenue,
        "lines": [{"product_id": "P1", "quantity": 2, "unit_price": price}],
        **kw,
    }


def _batch() -> list[Any]:
    atc = {**_view("e8"), "type": "add_to_cart", "quantity": 0}
    missing = _view("e3")
    del missing["anonymous_id"]
    return [
        _view("e1"),
        _purchase("e2"),
        _view("e1"),
        missing,
        {**_purchase("e4", price=-1.0), "currency": "XXX"},
        {**_view("e5"), "type": "teleport"},
        _view("e6", occurred_at=(NOW + timedelta(hours=1)).isoformat()),
        _purchase("e7", revenue=25.0),
        atc,
        "hello",
        _view("e10", pid="NEW"),
    ]


def _ingestor(runtime: Runtime) -> Ingestor:
    settings = runtime.settings.model_copy(update={"require_known_products": True})
    catalog = runtime.catalog

    def known(pid: str) -> bool:
        return pid in {"P1", "P2"} or bool(catalog.get_many([pid]))

    return Ingestor(runtime.db, settings, known_product=known, clock=lambda: NOW)


def _problems(report: Any) -> list[tuple[str, list[tuple[str, str]]]]:
    return [(v.status, [(p.code, p.field) for p in v.problems]) for v in report.verdicts]


def test_verdicts_are_exact_and_nothing_is_lost(runtime: Runtime) -> None:
    ingestor = _ingestor(runtime)
    report = ingestor.ingest(_batch(), source="test")
    assert _problems(report) == [
        ("accepted", []),
        ("accepted", []),
        ("duplicate", []),
        ("rejected", [("missing_field", "anonymous_id")]),
        (
            "rejected",
            [("negative_price", "lines[0].unit_price"), ("unknown_currency", "currency")],
        ),
        ("rejected", [("unknown_event_type", "type")]),
        ("rejected", [("future_timestamp", "occurred_at")]),
        ("rejected", [("revenue_mismatch", "revenue")]),
        ("rejected", [("invalid_quantity", "quantity")]),
        ("rejected", [("not_an_object", "")]),
        ("rejected", [("unknown_product", "product_id")]),
    ]
    assert [v.event_id for v in report.verdicts][:3] == ["e1", "e2", "e1"]
    assert report.counts() == {"received": 11, "accepted": 2, "duplicate": 1, "rejected": 8}
    assert ingestor.store.count() == 2
    with runtime.db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(quarantine)).scalar_one() == 8
    entries = ingestor.quarantine.entries()
    assert entries[0].payload == _batch()[3]
    assert entries[0].reasons == [
        {"code": "missing_field", "field": "anonymous_id", "message": "Field required"}
    ]
    # stored + quarantined = received (the duplicate is the already stored e1)
    assert report.count("accepted") + report.count("duplicate") + len(entries) == 11

    again = ingestor.ingest(_batch(), source="test")
    assert again.counts() == {"received": 11, "accepted": 0, "duplicate": 3, "rejected": 8}
    assert ingestor.store.count() == 2
    assert [e.seen_count for e in ingestor.quarantine.entries()] == [2] * 8


def test_replay_after_a_fix_moves_events_into_the_store(runtime: Runtime) -> None:
    ingestor = _ingestor(runtime)
    ingestor.ingest(_batch(), source="test")
    first = ingestor.replay()
    assert first.as_dict() == {"accepted": 0, "duplicate": 0, "still_rejected": 8}
    runtime.catalog.upsert([Product(product_id="NEW", title="New thing", price=5.0)])
    second = ingestor.replay()
    assert second.as_dict() == {"accepted": 1, "duplicate": 0, "still_rejected": 7}
    assert ingestor.store.count() == 3
    assert ingestor.quarantine.counts() == {"open": 7, "replayed": 1}
    assert [e.event_id for e in ingestor.quarantine.entries(status="replayed")] == ["e10"]


def test_user_agent_fills_platform_browser_and_os(runtime: Runtime) -> None:
    ua = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
    )
    report = Ingestor(runtime.db, runtime.settings).ingest([_view("u1", user_agent=ua)])
    assert report.counts()["accepted"] == 1
    with runtime.db.engine.connect() as conn:
        from shelfwise.store.tables import events

        row = conn.execute(select(events.c.platform, events.c.os, events.c.browser)).one()
    assert tuple(row) == ("mobile_web", "iOS", "Safari")
