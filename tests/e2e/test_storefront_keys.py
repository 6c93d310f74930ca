"""Storefront keys: what a browser's key may do, from which origins, how often.

Both backends; the shared (Redis) counters with two apps as two workers. Limits
are per hour so that no window ends while a test runs (fixed windows start at a
key's first request).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from shelfwise.api import create_app
from shelfwise.config import ApiKey, Settings
from tests.conftest import REDIS_URL, headers, service_missing
from tests.waiting import eventually

SHOP = "https://shop.example"
SECRET = "storefront-shop-secret"
EVENT = {
    "event_id": "e-sf-1",
    "type": "page_view",
    "occurred_at": "2026-11-01T12:00:00Z",
    "anonymous_id": "anon-1",
    "page_type": "home",
}


def _with_key(settings: Settings, rate_limit: str | None = "5/hour", **more: object) -> Settings:
    key = ApiKey(
        name="shop-web",
        secret=SECRET,
        roles=("storefront",),
        origins=(SHOP,),
        rate_limit=rate_limit,
    )
    update = {"api_keys": (*settings.api_keys, key), **more}
    return settings.model_copy(update=update)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(_with_key(settings)), raise_server_exceptions=False) as c:
        yield c


def _key(origin: str | None = SHOP) -> dict[str, str]:
    h = {"X-API-Key": SECRET}
    if origin is not None:
        h["Origin"] = origin
    return h


def test_a_storefront_key_asks_for_slates_and_posts_events_only(client: TestClient) -> None:
    r = client.get("/v1/recommendations?placement=home", headers=_key())
    assert r.status_code == 200
    assert r.json()["placement"] == "home"
    assert r.headers["access-control-allow-origin"] == SHOP
    r = client.post("/v1/recommendations", json={"placement": "home"}, headers=_key())
    assert r.status_code == 200
    r = client.post("/v1/events", json=[EVENT], headers=_key())
    assert r.status_code == 200
    assert r.json()["accepted"] == 1
    # Revenue, identity links and the catalog's writes are not a browser's business.
    for method, path in (
        ("GET", "/v1/monitoring/metrics"),
        ("GET", "/v1/identity/anon-1"),
        ("POST", "/v1/events/segment"),
    ):
        r = client.request(method, path, headers=_key())
        assert r.status_code == 403, path
        assert r.json()["error"]["code"] == "role_missing"


def test_other_origins_are_refused_and_get_no_cors(client: TestClient) -> None:
    evil = "https://evil.example"
    r = client.get("/v1/recommendations?placement=home", headers=_key(evil))
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in r.headers
    r = client.post("/v1/events", json=[EVENT], headers=_key(evil))
    assert r.json()["error"]["code"] == "origin_not_allowed"
    # A preflight shows no key: CORS admits the origins the keys name, no other.
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-api-key"}
    ok = client.options("/v1/events", headers={"Origin": SHOP, **ask})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == SHOP
    assert client.options("/v1/events", headers={"Origin": evil, **ask}).status_code == 400
    # Without an Origin (a server, curl) the key is not a cross-site browser's.
    assert client.get("/v1/recommendations?placement=home", headers=_key(None)).status_code == 200


def test_over_its_rate_limit_a_key_gets_429_with_retry_after(client: TestClient) -> None:
    # GET (the hot path), POST and events count together, per key.
    calls = [
        lambda: client.get("/v1/recommendations?placement=home", headers=_key()),
        lambda: client.post("/v1/recommendations", json={"placement": "home"}, headers=_key()),
        lambda: client.post("/v1/events", json=[EVENT], headers=_key()),
    ]
    statuses = [calls[i % 3]().status_code for i in range(5)]
    assert statuses == [200] * 5
    for call in calls:
        r = call()
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(r.headers["retry-after"]) <= 3600
        assert r.headers["access-control-allow-origin"] == SHOP  # the page can read why
        assert "retry-after" in r.headers["access-control-expose-headers"].lower()
    # Other keys are not limited.
    r = client.get("/v1/recommendations?placement=home", headers=headers("read"))
    assert r.status_code == 200


def test_one_address_is_limited_across_keys(settings: Settings) -> None:
    s = _with_key(settings, rate_limit=None, storefront_ip_rate_limit="3/hour")
    with TestClient(create_app(s), raise_server_exceptions=False) as c:
        created = c.post(
            "/v1/keys",
            json={"name": "second-shop", "roles": ["storefront"], "origins": [SHOP]},
            headers=headers("admin"),
        ).json()
        other = {"X-API-Key": created["secret"], "Origin": SHOP}
        url = "/v1/recommendations?placement=home"
        got = [c.get(url, headers=h).status_code for h in (_key(), other, _key(), other)]
        assert got == [200, 200, 200, 429]
        assert "this address" in c.get(url, headers=_key()).json()["error"]["message"]


def test_stored_storefront_keys_carry_origins_and_limits(client: TestClient) -> None:
    body = {
        "name": "eu-shop",
        "roles": ["storefront"],
        "origins": ["https://eu.shop.example"],
        "rate_limit": "2/hour",
    }
    created = client.post("/v1/keys", json=body, headers=headers("admin"))
    assert created.status_code == 201
    assert created.json()["origins"] == ["https://eu.shop.example"]
    mine = {"X-API-Key": created.json()["secret"], "Origin": "https://eu.shop.example"}
    url = "/v1/recommendations?placement=home"
    assert [client.get(url, headers=mine).status_code for _ in range(3)] == [200, 200, 429]
    assert client.get(url, headers={**mine, "Origin": SHOP}).status_code == 403
    listed = client.get("/v1/keys", headers=headers("admin")).json()
    assert listed[0]["rate_limit"] == "2/hour"


@pytest.mark.parametrize(
    "body",
    [
        {"roles": ["storefront", "read"]},
        {"roles": ["read"], "origins": [SHOP]},
        {"roles": ["read"], "rate_limit": "5/minute"},
        {"roles": ["storefront"], "origins": ["shop.example"]},
        {"roles": ["storefront"], "origins": [SHOP + "/"]},
        {"roles": ["storefront"], "rate_limit": "lots"},
    ],
)
def test_bad_storefront_keys_are_refused(client: TestClient, body: dict[str, object]) -> None:
    r = client.post("/v1/keys", json={"name": "bad", **body}, headers=headers("admin"))
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "key_storefront_invalid"


def _redis_prefix() -> str:
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
    except redis.RedisError:
        service_missing("Redis at 127.0.0.1:6379")
    return f"test-{uuid.uuid4().hex[:8]}"


def _two_workers(s: Settings) -> tuple[str, list[int]]:
    """Two apps (workers) of ``s``, asked for slates in turn: the gate's backend, statuses."""
    url = "/v1/recommendations?placement=home"
    with (
        TestClient(create_app(s), raise_server_exceptions=False) as a,
        TestClient(create_app(s), raise_server_exceptions=False) as b,
    ):
        got = [w.get(url, headers=_key()).status_code for w in (a, b, a, b, a, b)]
        return a.app.state.gate.backend, got  # type: ignore[attr-defined]


def test_with_redis_every_worker_counts_together(sqlite_settings: Settings) -> None:
    prefix = _redis_prefix()
    # Every request counted in Redis at once: exact.
    s = _in_redis(sqlite_settings, prefix, every=0)
    try:
        assert _two_workers(s) == ("redis", [200, 200, 200, 200, 429, 429])
    finally:
        _drop(prefix)


def _in_redis(settings: Settings, prefix: str, every: float) -> Settings:
    """The storefront key, 4 requests an hour, counted in Redis under ``prefix``."""
    return _with_key(
        settings,
        rate_limit="4/hour",
        redis_url=REDIS_URL,
        redis_prefix=prefix,
        storefront_limit_sync_seconds=every,
    )


def _drop(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    for k in client.scan_iter(f"{prefix}:*"):
        client.delete(k)


def test_with_redis_in_batches_a_worker_admits_one_interval_past_the_limit(
    sqlite_settings: Settings,
) -> None:
    """Counts pushed in batches (the default): a worker judges by the total it last
    read plus its own counts since, and reads the total back when it pushes. Pushes
    are made by hand here (the interval is an hour)."""
    prefix = _redis_prefix()
    s = _in_redis(sqlite_settings, prefix, every=3600)
    url = "/v1/recommendations?placement=home"
    try:
        with (
            TestClient(create_app(s), raise_server_exceptions=False) as a,
            TestClient(create_app(s), raise_server_exceptions=False) as b,
        ):
            ga, gb = a.app.state.gate.batched, b.app.state.gate.batched  # type: ignore[attr-defined]

            def ask(worker: TestClient, n: int) -> list[int]:
                return [worker.get(url, headers=_key()).status_code for _ in range(n)]

            assert ask(a, 2) == [200, 200]
            ga.sync()  # Redis: 2
            assert ask(b, 3) == [200, 200, 200]  # b read nothing yet: b's own 3 pass...
            gb.sync()  # Redis: 5, and b knows it
            assert ask(b, 1) == [429]
            # ...and a, which read 2, admits up to the limit on its own count.
            assert ask(a, 3) == [200, 200, 429]
            ga.sync()  # Redis: 7; a knows it
            assert ask(a, 1) == [429]
        # Redis holds every admitted request, per key and per address: 7 of each.
        client = redis.Redis.from_url(REDIS_URL)
        counts = [int(client.get(k) or 0) for k in client.scan_iter(f"{prefix}:ratelimit*")]
        assert counts == [7, 7]
    finally:
        _drop(prefix)


def test_without_redis_each_worker_counts_alone(sqlite_settings: Settings) -> None:
    s = _with_key(sqlite_settings, rate_limit="2/hour")
    assert _two_workers(s) == ("memory", [200, 200, 200, 200, 429, 429])


def test_a_lost_redis_loosens_the_limits_to_per_worker(sqlite_settings: Settings) -> None:
    for every in (0, 0.05):  # counted at once, in batches
        s = _with_key(
            sqlite_settings,
            rate_limit="2/hour",
            redis_url="redis://127.0.0.1:9/0",
            storefront_limit_sync_seconds=every,
        )
        url = "/v1/recommendations?placement=home"
        with TestClient(create_app(s), raise_server_exceptions=False) as a:
            got = [a.get(url, headers=_key()).status_code for _ in range(3)]
            assert got == [200, 200, 429]
            gate = a.app.state.gate  # type: ignore[attr-defined]
            eventually(
                lambda g=gate: g.backend == "memory (redis down)",  # type: ignore[misc]
                what="redis seen down",
            )
            # Counted in this worker's memory now (batched counts before the loss are
            # dropped): the limit still holds per worker.
            after = [a.get(url, headers=_key()).status_code for _ in range(3)]
            assert after.count(200) <= 2
            assert after[-1] == 429


def test_only_a_storefront_key_may_be_given_in_the_url(client: TestClient) -> None:
    url = "/v1/recommendations?placement=home&key="
    assert client.get(url + SECRET, headers={"Origin": SHOP}).status_code == 200
    r = client.post("/v1/events?key=" + SECRET, content=b"[]", headers={"Origin": SHOP})
    assert r.status_code == 200  # a beacon's text/plain body is read as JSON
    for path in (url + "read-secret-key", "/v1/events?key=ingest-secret-key"):
        method = "GET" if path.startswith(url) else "POST"
        r = client.request(method, path, content=b"[]" if method == "POST" else None)
        assert r.status_code == 401, path
    # A header key wins over the URL's.
    assert client.get(url + "nonsense", headers=headers("read")).status_code == 200


def test_the_cli_creates_storefront_keys(sqlite_settings: Settings) -> None:
    from tests.e2e.server import json_of, run_cli, settings_env

    env = settings_env(sqlite_settings)
    args = ["keys", "create", "shop-web", "--role", "storefront", "--origin", SHOP]
    created = json_of(run_cli([*args, "--rate-limit", "100/minute", "--json"], env))
    assert (created["roles"], created["origins"], created["rate_limit"]) == (
        ["storefront"],
        [SHOP],
        "100/minute",
    )
    refused = run_cli(["keys", "create", "mixed", "-r", "storefront", "-r", "read"], env)
    assert refused.returncode != 0
    assert "key_storefront_invalid" in refused.stdout + refused.stderr
