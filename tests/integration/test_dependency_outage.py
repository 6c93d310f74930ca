"""PostgreSQL and Redis going away under load, then coming back, with shelfwise left running.

As docs/operations.md says: with the store down recommendations keep coming from
memory and events get 503 ``database_unavailable`` (never a 500); with Redis
down sessions fall back to the worker's memory. Both recover by themselves.

No step waits on a guess at how long something takes: each waits for the product to
say it happened (``/ready``, an acknowledged event, a gauge on ``/metrics``), under a
ceiling meant only to end a hung run (``make test-stress`` runs this beside CPU burners).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx2 as httpx
import pytest
import redis
from sqlalchemy import func, select

from shelfwise.catalog import Product
from shelfwise.config import Settings, load_settings
from shelfwise.runtime import Runtime
from shelfwise.store.tables import decisions
from tests.conftest import API_KEYS, PG_URL, headers
from tests.integration.killing import Stream, server
from tests.integration.outage import Outcomes, Proxy, RedisServer

pytestmark = pytest.mark.slow


def _prepare(settings: Settings) -> None:
    rt = Runtime.open(settings, load=False)
    rt.catalog.upsert(
        [
            Product(product_id=f"P{i}", title=f"Lamp {i}", price=10.0 + i, stock_qty=5)
            for i in range(12)
        ]
    )
    rt.close()


def _traffic(base: str, out: Outcomes) -> Callable[[httpx.Client, int], bool]:
    """Alternately a batch of events and a recommendation, in a few sessions."""

    def step(client: httpx.Client, k: int) -> bool:
        session = f"s{k % 7}"
        sent = out.phase

        def phase() -> str:
            # A request in flight while the phase changed (sent while the store was down,
            # answered after it came back) belongs to neither phase.
            return sent if out.phase == sent else "between"

        if k % 2:
            r = client.get(
                f"{base}/v1/recommendations?placement=home&k=4&session={session}",
                headers=headers("read"),
            )
            ok = out.record(phase(), "recommend", r)
            assert r.status_code != 200 or len(r.json()["items"]) == 4
            return ok
        batch = [
            {
                "type": "product_view",
                "event_id": f"{sent}-{k}-{i}",
                "occurred_at": "2026-11-01T12:00:00Z",
                "anonymous_id": f"a{k % 7}",
                "session_id": session,
                "product_id": f"P{(k + i) % 12}",
            }
            for i in range(5)
        ]
        r = client.post(f"{base}/v1/events", json=batch, headers=headers("ingest"))
        return out.record(phase(), "ingest", r)

    return step


# Ends a run that hangs; a loaded machine is never meant to come near it.
CEILING = 120


def _until(check: Callable[[], bool], what: str, seconds: float = CEILING) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.1)


def _stored(rt: Runtime, rec_ids: list[str]) -> int:
    with rt.db.engine.connect() as conn:
        query = select(func.count()).where(decisions.c.rec_id.in_(rec_ids))
        return int(conn.execute(query).scalar_one())


def _gauge(base: str, name: str) -> float:
    text = httpx.get(f"{base}/metrics", headers=headers("read"), timeout=30).text
    line = next(ln for ln in text.splitlines() if ln.startswith(f"{name} "))
    return float(line.split()[-1])


def _ready(base: str) -> int:
    return httpx.get(f"{base}/ready", timeout=30).status_code


@pytest.mark.postgres
def test_postgres_outage_degrades_and_recovers(pg_schema: str, tmp_path: Path) -> None:
    with Proxy(("127.0.0.1", 5432)) as proxy:
        url = PG_URL.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        settings = load_settings(
            database_url=url, database_schema=pg_schema, api_keys=API_KEYS, model_dir=tmp_path
        )
        _prepare(settings)
        out = Outcomes()
        with server(settings) as (_, base), Stream(_traffic(base, out)) as stream:
            stream.wait_for(10)
            # cut() returns once no connection gets through; the outage counts from when
            # the server says so (the phase is read before each request is sent).
            out.phase = "cutting"
            proxy.cut()
            _until(lambda: _ready(base) == 503, "/ready saying the store is down")
            out.phase = "down"
            _until(lambda: len(out.of("down", "recommend")) >= 20, "slates served from memory")
            _until(lambda: len(out.of("down", "ingest")) >= 5, "events refused")
            ready = httpx.get(f"{base}/ready", timeout=30)
            scrape = httpx.get(f"{base}/metrics", headers=headers("read"), timeout=30)
            _until(lambda: _gauge(base, "shelfwise_decisions_pending") >= 1, "slates queued")
            queued = _gauge(base, "shelfwise_decisions_pending")
            out.phase = "restoring"
            proxy.restore()
            _until(lambda: (200, None) in out.of("restoring", "ingest"), "events accepted again")
            # Every slate of the outage was queued before this (the stream is sequential):
            # once the decision log says its queue was empty after this moment, each is
            # stored, or lost.
            back = time.time()
            out.phase = "after"
            stream.wait_for(stream.acked + 10)
            _until(
                lambda: _gauge(base, "shelfwise_decisions_stored_through_timestamp_seconds") > back,
                "the decision log drained",
            )
            dropped = _gauge(base, "shelfwise_decisions_dropped_total")
            direct = Runtime.open(settings.model_copy(update={"database_url": PG_URL}), load=False)
            try:
                stored = _stored(direct, out.rec_ids["down"])
            finally:
                direct.close()
    assert ready.status_code == 503 and ready.json()["error"]["code"] == "database_unavailable"
    assert scrape.status_code == 200 and "shelfwise_catalog_snapshot_age_seconds" in scrape.text
    assert 500 not in out.statuses()
    down_recs, down_events = out.of("down", "recommend"), out.of("down", "ingest")
    assert down_recs and set(down_recs) == {(200, None)}
    assert down_events and set(down_events) == {(503, "database_unavailable")}
    assert set(out.of("after", "ingest")) == {(200, None)} == set(out.of("after", "recommend"))
    # The slates served during the outage were queued, and all written once it was over.
    assert queued >= 1 and dropped == 0
    assert stored == len(out.rec_ids["down"])


@pytest.mark.redis
def test_redis_outage_falls_back_to_memory_and_recovers(settings: Settings) -> None:
    with RedisServer() as rs:
        settings = settings.model_copy(
            update={"redis_url": rs.url, "redis_prefix": f"outage{rs.port}"}
        )
        _prepare(settings)
        out = Outcomes()
        env = {"SHELFWISE_REDIS_RETRY_SECONDS": "0.5"}
        with server(settings, **env) as (_, base), Stream(_traffic(base, out)) as stream:
            stream.wait_for(10)
            assert _gauge(base, "shelfwise_session_backend_degraded") == 0
            rs.kill()
            out.phase = "down"
            _until(
                lambda: _gauge(base, "shelfwise_session_backend_degraded") == 1,
                "sessions in memory",
            )
            stream.wait_for(stream.acked + 10)
            # The rulebook version broadcast is gone too: a rule change still applies at once.
            rule = {"id": "no-p1", "type": "exclude", "reason": "r",
                    "when": {"attr": "product_id", "op": "eq", "value": "P1"}}  # fmt: skip
            # (timeout=30 as every call here: httpx's default of 5 s is a speed check)
            m = headers("merchandiser")
            saved = httpx.post(f"{base}/v1/rules", json=rule, headers=m, timeout=30)
            assert saved.status_code == 201, saved.text
            book = httpx.get(f"{base}/v1/rules", headers=m, timeout=30).json()
            slate = httpx.get(
                f"{base}/v1/recommendations?placement=home&k=12",
                headers=headers("read"),
                timeout=30,
            ).json()
            rs.start()
            out.phase = "restoring"
            _until(
                lambda: _gauge(base, "shelfwise_session_backend_degraded") == 0,
                "sessions back in Redis",
            )
            out.phase = "after"
            stream.wait_for(stream.acked + 10)
            client = redis.Redis.from_url(rs.url)
            sessions = client.keys(f"outage{rs.port}:session:*")
            client.close()
    assert out.statuses() == {200}
    assert out.of("down", "recommend") and out.of("down", "ingest")
    assert sessions  # written to the restarted Redis, with no restart of shelfwise
    assert book["rulebook_version"] >= 1 and slate["rulebook_version"] == str(
        book["rulebook_version"]
    )
    assert "P1" not in [i["product_id"] for i in slate["items"]] and len(slate["items"]) == 11
