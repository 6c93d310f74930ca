"""Product-id reconciliation: misses classified, aliases applied, join rate by segment."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shelfwise.catalog import Product, ProductPatch
from shelfwise.contracts.reconcile import canonical, listings, reconcile
from shelfwise.runtime import Runtime
from shelfwise.simulate.defects import format_product_id
from shelfwise.store.types import utcnow

T = "2026-11-01T12:00:00Z"


def _view(eid: str, pid: str, platform: str = "web") -> dict[str, Any]:
    return {
        "type": "product_view",
        "event_id": eid,
        "occurred_at": T,
        "anonymous_id": "a",
        "product_id": pid,
        "platform": platform,
    }


def test_misses_are_classified_and_aliases_fix_them(runtime: Runtime) -> None:
    runtime.catalog.upsert(
        [
            Product(product_id="123A", title="Lamp"),
            Product(product_id="OLD", title="Gone", active=False),
        ]
    )
    runtime.ingestor.ingest(
        [
            _view("1", "123A"),
            _view("2", "00123a"),
            _view("3", "123A-XL", "ios_app"),
            _view("4", "OLD"),
            _view("5", "ZZZ", "ios_app"),
            _view("6", "123A", "ios_app"),
        ]
    )
    rep = reconcile(runtime.db, runtime.catalog, runtime.aliases)
    assert (rep.lines, rep.joined) == (6, 2)
    assert rep.misses == {"formatting": 1, "variant": 1, "retired": 1, "unknown": 1}
    assert [(s.event_type, s.platform, s.lines, s.joined) for s in rep.segments] == [
        ("product_view", "ios_app", 3, 1),
        ("product_view", "web", 3, 1),
    ]
    assert rep.fixes == [("00123a", "123A", "formatting"), ("123A-XL", "123A", "variant")]
    runtime.aliases.add_many(rep.fixes)
    after = reconcile(runtime.db, runtime.catalog, runtime.aliases)
    assert (after.joined, after.misses) == (4, {"alias": 2, "retired": 1, "unknown": 1})
    assert runtime.known_product("123A-XL") and not runtime.known_product("ZZZ")


def _at(eid: str, pid: str, when: datetime) -> dict[str, Any]:
    return {**_view(eid, pid), "occurred_at": when.isoformat()}


def _tick() -> datetime:
    """A strictly later moment than anything recorded before the call."""
    time.sleep(0.002)
    return utcnow()


def test_ids_are_checked_against_the_catalog_as_of_the_event(runtime: Runtime) -> None:
    runtime.catalog.upsert(
        [
            Product(product_id="A", title="Always there"),
            Product(product_id="LATE", title="Retired after the event"),
            Product(product_id="EARLY", title="Retired before the event"),
            Product(product_id="OFF", title="Off, then back", active=False),
        ]
    )
    runtime.catalog.patch("EARLY", ProductPatch(availability="discontinued"))
    runtime.catalog.upsert([Product(product_id="OFF", title="Off, then back")])
    first = _tick()
    runtime.ingestor.ingest(
        [
            _at("1", "A", first),
            _at("2", "LATE", first),
            _at("3", "EARLY", first),
            _at("4", "NEW", first),  # not in the catalog yet
            _at("5", "OFF", first),  # live again since before the event
        ]
    )
    _tick()
    runtime.catalog.patch("LATE", ProductPatch(availability="discontinued"))
    runtime.catalog.upsert([Product(product_id="NEW", title="Listed after event 4")])
    runtime.catalog.upsert([Product(product_id="A", title="Always there", active=False)])
    after = _tick()
    runtime.ingestor.ingest(
        [
            _at("6", "NEW", after),
            _at("7", "LATE", after),
            _at("8", "A", after),
            # a backfill: happened long before the catalog had A, received after it
            _at("9", "A", datetime(2020, 1, 1, tzinfo=UTC)),
        ]
    )
    rep = reconcile(runtime.db, runtime.catalog, runtime.aliases)
    assert (rep.lines, rep.joined) == (9, 5)
    assert rep.misses == {"retired": 3, "not_yet_listed": 1}
    assert rep.examples == {"retired": ["A", "EARLY", "LATE"], "not_yet_listed": ["NEW"]}
    assert rep.fixes == []


def test_a_listing_is_rebuilt_from_the_change_log(runtime: Runtime) -> None:
    runtime.catalog.upsert([Product(product_id="P", title="p", active=False)])
    t0 = _tick()
    runtime.catalog.upsert([Product(product_id="P", title="p")])
    t1 = _tick()
    runtime.catalog.patch("P", ProductPatch(availability="discontinued"))
    t2 = _tick()
    with runtime.db.engine.connect() as conn:
        listing = listings(conn)["P"]
    assert listing.live == [False, True, False]
    assert listing.times[0] < t0 < listing.times[1] < t1 < listing.times[2] < t2
    late = t2 + timedelta(days=1)
    assert [listing.state_at(t, late) for t in (t0, t1, t2)] == ["retired", "joined", "retired"]
    before = listing.since - timedelta(days=1)
    assert listing.state_at(before, before) == "not_yet_listed"
    assert listing.state_at(before, late) == "retired"  # backfill: the first recorded state


@pytest.mark.parametrize("style", ["lower", "whitespace", "strip_zeros"])
def test_every_way_the_simulator_misformats_an_id_is_formatting(style: str) -> None:
    written = format_product_id("P000120", style)
    assert written != "P000120"
    assert canonical(written) == canonical("P000120") == "P120"
    # Zeros inside a number are kept; only the padding of a run of digits goes.
    assert canonical("00123a") == canonical("123A") != canonical("1023A")
    assert canonical("P0") == "P0" != canonical("P")
