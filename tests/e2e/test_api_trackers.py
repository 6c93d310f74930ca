"""Segment and Snowplow events over HTTP: mapped, judged, stored; on both backends."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shelfwise.api import create_app
from shelfwise.config import Settings
from shelfwise.runtime import Runtime
from tests.conftest import headers

T = "2026-11-01T12:00:00.000Z"
ME = {"anonymousId": "anon-7", "userId": "cust-7", "timestamp": T}


def track(mid: str, event: str, **properties: Any) -> dict[str, Any]:
    return {"type": "track", "messageId": mid, "event": event, "properties": properties, **ME}


SEGMENT = {
    "batch": [
        track("m1", "Product Viewed", product_id="P1", price=59.0, currency="EUR"),
        track("m2", "Product Added", product_id=1042, quantity=2, price=59.0, currency="EUR"),
        track("m3", "Product Removed", product_id="P1"),
        track(
            "m4",
            "Order Completed",
            order_id="o-1",
            revenue=118.0,
            currency="EUR",
            products=[{"product_id": "P1", "quantity": 2, "price": 59.0}],
        ),
        track("m5", "Checkout Started", order_id="o-1"),
        track("m6", "Product Viewed", product_id=""),
        "not a message",
        {"type": "identify", "messageId": "m8", **ME},
    ]
}


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def test_segment_batch_is_mapped_and_judged(client: TestClient, settings: Settings) -> None:
    r = client.post("/v1/events/segment", json=SEGMENT, headers=headers("ingest"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert {k: body[k] for k in ("received", "accepted", "duplicate", "rejected", "ignored")} == {
        "received": 8,
        "accepted": 5,
        "duplicate": 0,
        "rejected": 2,
        "ignored": 1,
    }
    got = [(v["event_id"], v["status"], v["type"]) for v in body["verdicts"]]
    assert got == [
        ("m1", "accepted", "product_view"),
        ("m2", "accepted", "add_to_cart"),
        ("m3", "accepted", "remove_from_cart"),
        ("m4", "accepted", "purchase"),
        (None, "ignored", None),
        ("m6", "rejected", "product_view"),
        (None, "rejected", None),
        ("m8", "accepted", "login"),
    ]
    assert body["verdicts"][4]["problems"][0]["code"] == "event_not_mapped"
    assert body["verdicts"][6]["problems"][0]["code"] == "not_a_segment_message"
    rt = Runtime.open(settings, load=False)
    try:
        stored = {e.event_id: e for e in rt.ingestor.store.load(["m1", "m2", "m4", "m8"])}
    finally:
        rt.close()
    assert stored["m2"].product_id == "1042"  # type: ignore[union-attr]
    assert stored["m2"].quantity == 2  # type: ignore[union-attr]
    assert stored["m4"].lines[0].unit_price == 59.0  # type: ignore[union-attr]
    assert (stored["m8"].anonymous_id, stored["m8"].customer_id) == ("anon-7", "cust-7")
    again = client.post("/v1/events/segment", json=SEGMENT["batch"][0], headers=headers("ingest"))
    assert again.json()["duplicate"] == 1
    quarantined = client.get("/v1/quarantine", headers=headers("admin")).json()
    assert {e["source"] for e in quarantined} == {"segment"}
    assert len(quarantined) == 2


def _b64(data: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _snowplow(
    eid: str, action: str, products: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    contexts = [
        {
            "schema": "iglu:com.snowplowanalytics.snowplow.ecommerce/product/jsonschema/1-0-0",
            "data": p,
        }
        for p in products
    ]
    contexts += extra.pop("entities", [])
    return {
        "e": "ue",
        "eid": eid,
        "dtm": "1761998400000",  # 2025-11-01T12:00:00Z
        "duid": "anon-9",
        "sid": "sess-9",
        "ue_px": _b64(
            {
                "schema": "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
                "data": {
                    "schema": "iglu:com.snowplowanalytics.snowplow.ecommerce/snowplow_ecommerce_action/jsonschema/1-0-2",
                    "data": {"type": action},
                },
            }
        ),
        "co": json.dumps(
            {
                "schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0",
                "data": contexts,
            }
        ),
        **extra,
    }


def test_snowplow_payload_is_mapped_and_judged(client: TestClient) -> None:
    product = {"id": "P1", "name": "Linen duvet", "price": 59, "currency": "EUR", "quantity": 1}
    transaction = {
        "schema": "iglu:com.snowplowanalytics.snowplow.ecommerce/transaction/jsonschema/1-0-0",
        "data": {
            "transaction_id": "o-9",
            "revenue": 59,
            "currency": "EUR",
            "payment_method": "card",
        },
    }
    payload = {
        "schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
        "data": [
            _snowplow("s1", "product_view", [product]),
            _snowplow("s2", "add_to_cart", [product]),
            _snowplow("s3", "transaction", [product], entities=[transaction]),
            _snowplow("s4", "checkout_step", [product]),
            {"e": "pv", "eid": "s5", "dtm": "1761998400000", "duid": "anon-9"},
            {"eid": "s6"},
        ],
    }
    r = client.post("/v1/events/snowplow", json=payload, headers=headers("ingest"))
    assert r.status_code == 200, r.text
    got = [(v["event_id"], v["status"], v["type"]) for v in r.json()["verdicts"]]
    assert got == [
        ("s1", "accepted", "product_view"),
        ("s2", "accepted", "add_to_cart"),
        ("s3", "accepted", "purchase"),
        (None, "ignored", None),
        ("s5", "accepted", "page_view"),
        (None, "rejected", None),
    ]


def test_tracker_bodies_are_refused_as_documented(client: TestClient, settings: Settings) -> None:
    for path, key in (("/v1/events/segment", "batch"), ("/v1/events/snowplow", "data")):
        r = client.post(path, json={key: "x"}, headers=headers("ingest"))
        assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_batch")
        r = client.post(path, json=7, headers=headers("ingest"))
        assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_batch")
        r = client.post(path, content=b"{", headers=headers("ingest"))
        assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_json")
        assert client.post(path, json=[], headers=headers("read")).status_code == 403
        big = {key: [{}] * (settings.max_batch_size + 1)}
        r = client.post(path, json=big, headers=headers("ingest"))
        assert (r.status_code, r.json()["error"]["code"]) == (413, "batch_too_large")
