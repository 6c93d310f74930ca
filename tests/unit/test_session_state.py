"""One contract suite for the session backends (in-process and Redis), and the fallback."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import redis

from shelfwise.contracts.events import parse_event
from shelfwise.serving.session import (
    MemorySessions,
    RedisSessions,
    SessionBackend,
    SessionRecord,
    SessionState,
    records_of,
)
from tests.conftest import REDIS_URL, service_missing

R = SessionRecord


@pytest.fixture
def redis_backend() -> Iterator[RedisSessions]:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        client.close()
        service_missing("Redis at 127.0.0.1:6379")
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    yield RedisSessions(client, prefix, max_events=3, ttl_seconds=60)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest) -> SessionBackend:
    if request.param == "memory":
        return MemorySessions(max_events=3, ttl_seconds=60)
    b: RedisSessions = request.getfixturevalue("redis_backend")
    return b


def test_append_then_read_in_order(backend: SessionBackend) -> None:
    backend.append("s1", [R("A", "product_view", 1.0)])
    backend.append("s1", [R("B", "add_to_cart", 2.0)])
    assert backend.read("s1") == [R("A", "product_view", 1.0), R("B", "add_to_cart", 2.0)]
    assert backend.read("other") == []


def test_keeps_only_the_most_recent_events(backend: SessionBackend) -> None:
    backend.append("s1", [R(f"P{i}", "product_view", float(i)) for i in range(5)])
    assert [r.product_id for r in backend.read("s1")] == ["P2", "P3", "P4"]


def test_clear(backend: SessionBackend) -> None:
    backend.append("s1", [R("A", "product_view", 1.0)])
    backend.clear("s1")
    assert backend.read("s1") == []


def test_memory_sessions_expire_and_are_capped() -> None:
    m = MemorySessions(max_events=5, ttl_seconds=-1)
    m.append("s1", [R("A", "product_view", 1.0)])
    assert m.read("s1") == []
    capped = MemorySessions(max_events=5, ttl_seconds=60, max_sessions=2)
    for sid in ("a", "b", "c"):
        capped.append(sid, [R("A", "product_view", 1.0)])
    assert capped.session_ids() == ["b", "c"]


def test_records_of_events() -> None:
    at = datetime(2026, 11, 1, 12, tzinfo=UTC)
    base = {
        "event_id": "e1",
        "occurred_at": at.isoformat(),
        "anonymous_id": "a1",
        "session_id": "s",
    }
    view = parse_event({**base, "type": "product_view", "product_id": "P1"})
    assert records_of(view) == [R("P1", "product_view", at.timestamp())]
    buy = parse_event(
        {
            **base,
            "type": "purchase",
            "order_id": "o1",
            "currency": "EUR",
            "revenue": 30,
            "lines": [
                {"product_id": "P1", "quantity": 1, "unit_price": 10},
                {"product_id": "P2", "quantity": 2, "unit_price": 10},
            ],
        }
    )
    assert [r.product_id for r in records_of(buy)] == ["P1", "P2"]
    assert records_of(parse_event({**base, "type": "page_view", "page_type": "home"})) == []


class Flaky:
    """A backend that fails while ``down`` is set."""

    name = "redis"

    def __init__(self) -> None:
        self.down = False
        self.inner = MemorySessions(max_events=10, ttl_seconds=60)

    def _check(self) -> None:
        if self.down:
            raise redis.ConnectionError("refused")

    def append(self, session_id: str, records: list[SessionRecord]) -> None:  # type: ignore[override]
        self._check()
        self.inner.append(session_id, records)

    def read(self, session_id: str) -> list[SessionRecord]:
        self._check()
        return self.inner.read(session_id)

    def clear(self, session_id: str) -> None:
        self._check()
        self.inner.clear(session_id)


def test_redis_down_falls_back_and_recovers_with_a_metric() -> None:
    flaky = Flaky()
    flips: list[bool] = []
    state = SessionState(flaky, MemorySessions(10, 60), retry_seconds=0, on_degraded=flips.append)
    state.append("s1", [R("A", "product_view", 1.0)])
    flaky.down = True
    state.append("s1", [R("B", "product_view", 2.0)])
    assert state.degraded and flips == [True] and state.backend == "memory (redis down)"
    assert [r.product_id for r in state.read("s1")] == ["B"]
    flaky.down = False
    # Back: what was written during the outage is merged into Redis, in time order.
    assert [r.product_id for r in state.read("s1")] == ["A", "B"]
    assert flips == [True, False] and not state.degraded
    assert [r.product_id for r in flaky.inner.read("s1")] == ["A", "B"]


@pytest.mark.redis
def test_unreachable_redis_url_serves_from_memory() -> None:
    from shelfwise.config import load_settings

    settings = load_settings(redis_url="redis://127.0.0.1:1/0", redis_retry_seconds=60)
    flips: list[bool] = []
    state = SessionState.from_settings(settings, flips.append)
    state.append("s1", [R("A", "product_view", 1.0)])
    assert [r.product_id for r in state.read("s1")] == ["A"]
    assert flips == [True]


@pytest.mark.redis
def test_two_states_on_one_redis_share_the_session(redis_backend: RedisSessions) -> None:
    worker1 = SessionState(redis_backend, MemorySessions(10, 60))
    other = RedisSessions(redis_backend.client, redis_backend.prefix.split(":")[0], 3, 60)
    worker2 = SessionState(other, MemorySessions(10, 60))
    worker1.append("s9", [R("A", "add_to_cart", 1.0)])
    assert worker2.read("s9") == [R("A", "add_to_cart", 1.0)]
