"""The request path over real HTTP on a two-worker server (PostgreSQL or SQLite + Redis).

Each check asks several fresh connections, which the kernel spreads over both
workers: every worker must answer the same.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest
import redis

from shelfwise.config import Settings
from tests.conftest import REDIS_URL, headers, service_missing
from tests.e2e.server import running_server, settings_env
from tests.waiting import eventually

pytestmark = pytest.mark.redis

# The requests' clock (X-Shelfwise-Now): a day ahead, so the rule window is in the future.
T0 = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
PRODUCTS: list[dict[str, Any]] = [
    {
        "product_id": f"S{i}",
        "title": f"Sheet {i}",
        "brand": "Softloom" if i < 4 else "Nordhem",
        "category_path": "bedding/sheets",
        "price": 20.0 + i,
        "stock_qty": 5,
    }
    for i in range(1, 9)
] + [
    {
        "product_id": f"M{i}",
        "title": f"Mug {i}",
        "brand": "Gleam",
        "category_path": "kitchen/mugs",
        "price": 8.0 + i,
        "stock_qty": 5,
    }
    for i in range(1, 5)
]
READ, INGEST, MERCH = headers("read"), headers("ingest"), headers("merchandiser")


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=60)
    try:
        client.ping()
    except redis.RedisError:
        service_missing("Redis at 127.0.0.1:6379")
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    settings = settings.model_copy(update={"redis_url": REDIS_URL, "redis_prefix": prefix})
    env = settings_env(
        settings,
        SHELFWISE_ALLOW_CLOCK_HEADER="true",
        SHELFWISE_DECISION_FLUSH_SECONDS="0.05",
        SHELFWISE_LOG_LEVEL="warning",
    )
    with running_server(env, workers=2) as base:
        with httpx.Client(base_url=base, timeout=60) as c:
            assert (
                c.put("/v1/products", json={"products": PRODUCTS}, headers=MERCH).status_code == 200
            )
        yield base
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


def on_every_worker(
    base: str, path: str, params: dict[str, Any], now: datetime | None = None, n: int = 6
) -> list[dict[str, Any]]:
    out = []
    hdrs = {**READ, **({"X-Shelfwise-Now": now.isoformat()} if now else {})}
    for _ in range(n):
        with httpx.Client(base_url=base, timeout=60) as fresh:
            r = fresh.get(path, params=params, headers=hdrs)
            assert r.status_code == 200, r.text
            out.append(r.json())
    return out


def ids(slate: dict[str, Any]) -> list[str]:
    return [i["product_id"] for i in slate["items"]]


def event(kind: str, product: str, n: int, session: str = "sess-1") -> dict[str, Any]:
    return {
        "type": kind,
        "event_id": f"{session}-{n}",
        "occurred_at": (datetime.now(UTC) - timedelta(seconds=30 - n)).isoformat(),
        "anonymous_id": "anon-1",
        "session_id": session,
        "product_id": product,
    }


def test_session_stock_decisions_and_rules_on_two_workers(server: str) -> None:
    pdp = {"placement": "product_similar", "item": "S1", "session": "sess-1", "k": 6}
    before = on_every_worker(server, "/v1/recommendations", pdp, T0, n=2)
    # Anonymous views of the same product: served from each worker's slate cache after
    # the first, so what follows checks that the cache sees every change too.
    anon = {"placement": "product_similar", "item": "S1", "k": 6}
    assert all("S3" in ids(s) for s in on_every_worker(server, "/v1/recommendations", anon, T0))
    assert "S2" in ids(before[0])

    # 1. Events of the session reach the next slate on every worker: S2 is now in the cart.
    with httpx.Client(base_url=server, timeout=60) as c:
        batch = [event("product_view", "S2", 1), event("add_to_cart", "S2", 2)]
        r = c.post("/v1/events", json=batch, headers=INGEST)
        assert r.status_code == 200 and r.json()["accepted"] == 2, r.text
    for slate in on_every_worker(server, "/v1/recommendations", pdp, T0):
        assert "S2" not in ids(slate)

    # 2. A stock change to 0 removes the item from the next slate on every worker.
    assert "S3" in ids(before[0])
    with httpx.Client(base_url=server, timeout=60) as c:
        assert c.patch("/v1/products/S3", json={"stock_qty": 0}, headers=MERCH).status_code == 200
    slates = on_every_worker(server, "/v1/recommendations", pdp, T0)
    for slate in [*slates, *on_every_worker(server, "/v1/recommendations", anon, T0)]:
        assert "S3" not in ids(slate)

    # 3. The decision log answers for the rec_id (on whichever worker is asked).
    rec_id = slates[-1]["rec_id"]

    def decision() -> httpx.Response | None:
        with httpx.Client(base_url=server, timeout=60) as fresh:
            d = fresh.get(f"/v1/decisions/{rec_id}", headers=READ)
        assert d.status_code in (200, 404), d.text
        return d if d.status_code == 200 else None

    d = eventually(decision, "the slate stored by the worker that served it")
    assert d.json()["session_id"] == "sess-1"
    assert [i["product_id"] for i in d.json()["items"]] == ids(slates[-1])
    # /metrics says when every worker's queue was last empty (the lowest of the two):
    # past this moment, every slate served so far is stored, whichever worker served it.
    served = time.time()

    def stored_through() -> float:
        text = httpx.get(f"{server}/metrics", headers=READ, timeout=60).text
        name = "shelfwise_decisions_stored_through_timestamp_seconds "
        return float(next(ln for ln in text.splitlines() if ln.startswith(name)).split()[-1])

    eventually(lambda: stored_through() > served, "both workers' decision logs drained")

    # 4. A brand suppressed for a window disappears from the very next response on every
    #    worker, and comes back when the window has passed.
    rule = {
        "id": "no-nordhem",
        "type": "suppress",
        "reason": "supplier dispute",
        "values": ["Nordhem"],
        "window": {"start": T0.isoformat(), "end": (T0 + timedelta(hours=1)).isoformat()},
    }
    assert any(p.startswith("S") and int(p[1:]) >= 4 for p in ids(slates[0]))
    with httpx.Client(base_url=server, timeout=60) as c:
        r = c.post("/v1/rules", json=rule, headers={**MERCH, "X-Change-Reason": "dispute"})
        assert r.status_code == 201, r.text
    during = T0 + timedelta(minutes=5)
    for params in (pdp, anon):
        for slate in on_every_worker(server, "/v1/recommendations", params, during):
            assert all(int(p[1:]) < 4 for p in ids(slate) if p.startswith("S")), ids(slate)
    later = on_every_worker(server, "/v1/recommendations", pdp, T0 + timedelta(hours=2))
    later += on_every_worker(server, "/v1/recommendations", anon, T0 + timedelta(hours=2))
    for slate in later:
        assert any(p.startswith("S") and int(p[1:]) >= 4 for p in ids(slate))

    # Metrics add up over both workers.
    with httpx.Client(base_url=server, timeout=60) as c:
        text = c.get("/metrics", headers=READ).text
    assert 'shelfwise_slates_total{mode="degraded",placement="product_similar"}' in text
    assert "shelfwise_rule_drops_total" in text
    assert 'shelfwise_slate_cache_total{placement="product_similar",result="hit"}' in text
