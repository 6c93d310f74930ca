"""Recommendations, placements, decisions and metrics over HTTP (in-process ASGI)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shelfwise.api import create_app
from shelfwise.config import Settings
from tests.conftest import headers
from tests.e2e.server import lamp_shop_client
from tests.waiting import eventually

READ = headers("read")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    settings = settings.model_copy(update={"allow_clock_header": True})
    with lamp_shop_client(settings) as c:
        yield c


def test_get_and_post_give_a_slate_with_storefront_data(client: TestClient) -> None:
    r = client.get("/v1/recommendations?placement=product_similar&item=P1&k=3", headers=READ)
    assert r.status_code == 200, r.text
    slate = r.json()
    assert len(slate["items"]) == 3 and slate["mode"] == "degraded"
    assert slate["placement"] == "product_similar" and len(slate["rec_id"]) == 29
    first = slate["items"][0]
    # same brand as P1 (odd numbers), first in catalog order (no events yet): P11
    assert first["product_id"] == "P11"
    assert (first["title"], first["price"], first["image_url"]) == ("Lamp 11", 21.0, "/img/11.jpg")
    assert "trace" not in slate
    body = {"placement": "cart", "cart": ["P1", "P2"], "k": 4, "explain": True}
    r = client.post("/v1/recommendations", json=body, headers=READ)
    assert r.status_code == 200
    slate = r.json()
    assert len(slate["items"]) == 4 and not {"P1", "P2"} & {i["product_id"] for i in slate["items"]}
    assert set(slate["trace"]) >= {"stages_ms", "candidates", "rules", "drops"}


def test_comma_separated_ids_and_the_clock_header(client: TestClient) -> None:
    r = client.get(
        "/v1/recommendations",
        params={"placement": "cart", "cart": "P1,P2", "k": 2},
        headers={**READ, "X-Shelfwise-Now": "2026-12-01T10:00:00+00:00"},
    )
    assert r.status_code == 200 and len(r.json()["items"]) == 2
    rec_id = r.json()["rec_id"]
    d = client.get(f"/v1/decisions/{rec_id}", headers=READ).json()
    assert d["served_at"].startswith("2026-12-01T10:00:00") and d["request"]["cart"] == ["P1", "P2"]
    bad = client.get(
        "/v1/recommendations?placement=home", headers={**READ, "X-Shelfwise-Now": "yesterday"}
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_clock"


def test_errors_are_clear(client: TestClient) -> None:
    r = client.get("/v1/recommendations?placement=product_similar", headers=READ)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "item_required")
    r = client.get("/v1/recommendations?placement=checkout", headers=READ)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "placement_not_found")
    assert client.get("/v1/recommendations?placement=home").status_code == 401
    r = client.get("/v1/recommendations?placement=home", headers=headers("ingest"))
    assert r.status_code == 403
    r = client.post("/v1/recommendations", json={"placement": "home", "colour": 1}, headers=READ)
    assert r.status_code == 422
    assert (
        client.get("/v1/decisions/nope", headers=READ).json()["error"]["code"]
        == "decision_not_found"
    )


def test_placements_endpoint(client: TestClient) -> None:
    r = client.get("/v1/placements", headers=READ).json()
    names = [p["name"] for p in r["placements"]]
    assert names == ["home", "product_similar", "product_bought_with", "cart", "email"]
    cart = r["placements"][3]
    assert cart["objective"] == {
        "engagement": 0.3,
        "revenue": 0.2,
        "margin": 0.5,
        "money_cap": 0.5,
        "popularity_penalty": 0.0,
        "chain_weight": 0.0,
        "exposure_cap": None,  # a cart has no anchor to calibrate over
    }
    similar = r["placements"][1]
    assert similar["objective"]["exposure_cap"] == 0.02
    assert cart["sources"] == {
        "complements": 1.0,
        "session": 0.3,
        "buy_again": 4.0,
        "basket_ease": 8.0,
    }
    assert cart["fallback"] == ["popular"]


def test_decision_answers_why_and_metrics_count(client: TestClient) -> None:
    slate = client.get("/v1/recommendations?placement=home&person=u7&k=2", headers=READ).json()

    def decision() -> dict[str, Any] | None:
        d = client.get(f"/v1/decisions/{slate['rec_id']}", headers=READ)
        assert d.status_code in (200, 404), d.text
        return d.json() if d.status_code == 200 else None

    d = eventually(decision, "the slate in the decision log")
    assert d["person_id"] == "u7" and d["mode"] == "degraded"
    assert [i["product_id"] for i in d["items"]] == [i["product_id"] for i in slate["items"]]
    assert d["items"][0]["reasons"][0]["text"]
    text = client.get("/metrics", headers=READ).text
    assert 'shelfwise_slates_total{mode="degraded",placement="home"} 1.0' in text
    assert 'shelfwise_recommendation_seconds_count{placement="home"} 1.0' in text
    assert "shelfwise_catalog_snapshot_age_seconds" in text
    assert "shelfwise_model_bundle_age_seconds -1.0" in text


def test_slate_cache_lookups_are_counted(client: TestClient) -> None:
    url = "/v1/recommendations?placement=product_similar&item=P1&k=3"
    slates = [client.get(url, headers=READ).json() for _ in range(3)]
    assert len({s["rec_id"] for s in slates}) == 3
    assert len({tuple(i["product_id"] for i in s["items"]) for s in slates}) == 1
    client.get(url + "&explain=true", headers=READ)
    client.get(url + "&person=u9&session=s9&cart=P2", headers=READ)  # cart: personal
    text = client.get("/metrics", headers=READ).text
    for result, n in (("miss", 1), ("hit", 2), ("bypass", 1)):
        sample = f'shelfwise_slate_cache_total{{placement="product_similar",result="{result}"}}'
        assert f"{sample} {n}.0" in text


HOT_PATH_CASES: list[tuple[str, dict[str, str], int]] = [
    ("/v1/recommendations?placement=product_similar&item=P1&k=3", READ, 200),
    ("/v1/recommendations?placement=cart&cart=P1,P2&cart=P3&k=2&explain=true", READ, 200),
    ("/v1/recommendations?placement=home&person=p-1&session=s-1", READ, 200),
    ("/v1/recommendations?placement=product_similar&item=P1", {}, 401),  # no key
    ("/v1/recommendations?placement=product_similar&item=P1", {"X-API-Key": "nope"}, 401),
    (
        "/v1/recommendations?placement=product_similar&item=P1",
        headers("ingest"),
        403,
    ),  # no read role
    ("/v1/recommendations?placement=product_similar&item=P1", headers("admin"), 200),
    ("/v1/recommendations?placement=product_similar&item=P1&k=0", READ, 422),
    ("/v1/recommendations?placement=product_similar&item=P1&k=x&explain=maybe", READ, 422),
    ("/v1/recommendations?item=P1", READ, 422),  # no placement
    ("/v1/recommendations?placement=nowhere&item=P1", READ, 404),
    ("/v1/recommendations?placement=product_similar", READ, 422),  # the viewed item is required
    ("/v1/recommendations?placement=home", {**READ, "X-Shelfwise-Now": "yesterday"}, 422),
    ("/v1/recommendations?placement=home", {**READ, "X-Request-ID": "req-42"}, 200),
    ("/v1/recommendations?placement=nowhere&placement=cart&k=9&k=2&cart=P1", READ, 200),
]


@pytest.fixture
def cors_client(client: TestClient, settings: Settings) -> Iterator[TestClient]:
    """The same store behind an app with CORS origins configured."""
    update = {"allow_clock_header": True, "cors_origins": (ORIGIN,)}
    app = create_app(settings.model_copy(update=update), client.app.state.runtime)  # type: ignore[attr-defined]
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


ORIGIN = "https://shop.example"


@pytest.mark.parametrize(("url", "hdrs", "status"), HOT_PATH_CASES)
def test_the_one_get_answers_the_same_inside_cors(
    client: TestClient, cors_client: TestClient, url: str, hdrs: dict[str, str], status: int
) -> None:
    """GET /v1/recommendations has one implementation (api/hotpath.py); with CORS
    configured it is answered inside the CORS middleware: the same status, body (but
    for the slate's own ids) and headers, plus CORS's."""
    plain = client.get(url, headers=hdrs)
    cors = cors_client.get(url, headers={**hdrs, "Origin": ORIGIN})
    assert cors.status_code == plain.status_code == status, cors.text
    assert cors.headers["content-type"] == plain.headers["content-type"] == "application/json"
    assert cors.headers.get("www-authenticate") == plain.headers.get("www-authenticate")
    assert cors.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-origin" not in plain.headers
    a, b = cors.json(), plain.json()
    if cors.status_code == 200:
        assert a.pop("rec_id") != b.pop("rec_id")
        for slate in (a, b):
            slate.pop("trace", None)  # its timings differ
        assert a == b and a["items"]
    else:
        rid = cors.headers["x-request-id"]
        assert a["error"].pop("request_id") == rid and len(rid) >= 6
        b["error"].pop("request_id")
        assert a == b
    if "X-Request-ID" in hdrs:
        assert cors.headers["x-request-id"] == plain.headers["x-request-id"] == "req-42"


def test_a_preflight_for_the_get_is_answered_by_cors(cors_client: TestClient) -> None:
    r = cors_client.options(
        "/v1/recommendations",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "GET"},
    )
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == ORIGIN
