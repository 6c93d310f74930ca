"""The simulator's HTTP writer against the real catalog and events endpoints."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shelfwise.api import create_app
from shelfwise.config import Settings
from shelfwise.contracts import EventStore
from shelfwise.runtime import Runtime
from shelfwise.simulate import (
    Defects,
    HttpPolicy,
    HttpWriter,
    LiveTraffic,
    SimulationSpec,
    SupplierStockout,
    simulate,
)
from tests.conftest import KEYS
from tests.waiting import eventually

SPEC = SimulationSpec(
    seed=9,
    products=150,
    people=80,
    days=4,
    defects=Defects(supplier_stockout=SupplierStockout(brand="Vireo", from_day=2)),
)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def test_http_writer_puts_the_catalog_posts_events_and_patches_stock(
    client: TestClient, settings: Settings
) -> None:
    c = client
    sim = simulate(SPEC)
    writer = HttpWriter("http://testserver", KEYS["admin"], batch_size=100, client=c)
    report = writer.write(sim)
    assert report["products"] == {
        "batches": 2,
        "sent": 150,
        "failed_batches": 0,
        "inserted": 150,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
    }
    assert report["events"]["sent"] == len(sim.events) and report["events"]["failed_batches"] == 0
    assert report["events"]["accepted"] == len(sim.events)
    vireo = [r["product_id"] for r in sim.world.catalog.records if r["brand"] == "Vireo"]
    assert report["stock_changes"]["sent"] == len(vireo) > 0
    runtime = Runtime.open(settings)
    try:
        assert runtime.catalog.count() == 150
        assert EventStore(runtime.db).count() == len(sim.events)
        assert all(runtime.catalog.get(pid).stock_qty == 0 for pid in vireo)
    finally:
        runtime.close()


def test_http_writer_counts_refused_batches(
    client: TestClient,
) -> None:
    c = client
    sim = simulate(SPEC.model_copy(update={"products": 20, "people": 5, "days": 1}))
    report = HttpWriter("http://testserver", "wrong-key-000", client=c).put_products(
        sim.world.catalog.records
    )
    assert (report.batches, report.failed_batches, report.verdicts) == (1, 1, {})
    assert report.failures == {"401": 1}


def test_live_traffic_thread_posts_through_http_and_stops(
    client: TestClient,
) -> None:
    c = client
    sim = simulate(SPEC.model_copy(update={"people": 40, "days": 2}))
    writer = HttpWriter("http://testserver", KEYS["admin"], client=c)
    assert writer.put_products(sim.world.catalog.records).failed_batches == 0
    policy = HttpPolicy(
        "http://testserver", KEYS["admin"], client=c
    )  # no endpoint yet: empty slates
    clock = iter(range(1_800_000_000, 1_900_000_000, 120))  # two minutes per tick
    posted: list[int] = []

    def sink(events: Sequence[dict[str, Any]]) -> None:
        posted.append(writer.post_events(events).failed_batches)

    live = LiveTraffic(
        sim.world,
        policy,
        sink,
        sessions_per_second=0.2,
        clock=lambda: float(next(clock)),
        tick=0.01,
    ).start()
    try:
        eventually(lambda: live.posted >= 50 or live.errors, "50 live events posted")
    finally:
        live.stop()
    assert live.posted >= 50 and live.errors == 0 and posted
    assert not any(posted)
