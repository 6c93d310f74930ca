"""The catalog over HTTP, through the real app (in-process ASGI)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from shelfwise.api import create_app
from shelfwise.config import Settings
from shelfwise.runtime import Runtime
from tests.conftest import headers


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


ROWS = [
    {
        "product_id": "P1",
        "title": "Linen duvet",
        "price": 59.0,
        "stock_qty": 4,
        "brand": "softloom",
    },
    {"product_id": "P2", "title": "Bad", "price": -1},
    {"product_id": "P3", "title": "Oak table", "price": 120.0, "stock_qty": 2},
    {"product_id": "P4"},
]


def test_health_ready_docs(client: TestClient) -> None:
    assert client.get("/health").json()["status"] == "ok"
    ready = client.get("/ready").json()
    assert ready["status"] == "ready" and ready["catalog_products"] == 0
    assert client.get("/docs").status_code == 200
    assert "/v1/products" in client.get("/openapi.json").json()["paths"]


def test_put_reports_invalid_rows_and_stores_the_rest(client: TestClient) -> None:
    r = client.put("/v1/products", json={"products": ROWS}, headers=headers("merchandiser"))
    assert r.status_code == 200
    body = r.json()
    assert (body["received"], body["inserted"], body["updated"], body["unchanged"]) == (4, 2, 0, 0)
    assert [(x["row"], x["product_id"], x["errors"][0]["field"]) for x in body["rejected"]] == [
        (1, "P2", "price"),
        (3, "P4", "title"),
    ]
    again = client.put(
        "/v1/products", json={"products": ROWS}, headers=headers("merchandiser")
    ).json()
    assert (again["inserted"], again["unchanged"]) == (0, 2)
    got = client.get("/v1/products/P1", headers=headers("read")).json()
    assert got["brand"] == "Softloom"


def test_patch_is_visible_in_the_snapshot_at_once(client: TestClient) -> None:
    client.put("/v1/products", json={"products": ROWS[:1]}, headers=headers("merchandiser"))
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    i = runtime.snapshot.index_of("P1")
    assert i is not None and runtime.snapshot.stock[i] == 4
    r = client.patch("/v1/products/P1", json={"stock_qty": 0}, headers=headers("merchandiser"))
    assert r.status_code == 200 and r.json()["availability"] == "out_of_stock"
    assert runtime.snapshot.stock[i] == 0 and not runtime.snapshot.available[i]
    hist = client.get("/v1/products/P1/history", headers=headers("read")).json()
    assert hist[0]["changes"]["stock_qty"] == [4, 0]


def test_batch_patch_and_unknown_id(client: TestClient) -> None:
    client.put("/v1/products", json={"products": [ROWS[0], ROWS[2]]}, headers=headers("admin"))
    r = client.patch(
        "/v1/products",
        json={
            "changes": [{"product_id": "P1", "price": 55.0}, {"product_id": "P3", "stock_qty": 9}]
        },
        headers=headers("merchandiser"),
    )
    assert [(p["product_id"], p["price"], p["stock_qty"]) for p in r.json()] == [
        ("P1", 55.0, 4),
        ("P3", 120.0, 9),
    ]
    r = client.patch("/v1/products/NOPE", json={"stock_qty": 1}, headers=headers("merchandiser"))
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "product_not_found"
    assert r.json()["error"]["request_id"] == r.headers["x-request-id"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("put", "/v1/products", {"products": ROWS[:1]}),
        ("patch", "/v1/products/P1", {"stock_qty": 1}),
        ("get", "/v1/products", None),
        ("get", "/v1/catalog/report", None),
    ],
)
def test_auth_401_and_403(client: TestClient, method: str, path: str, body: object) -> None:
    r = client.request(method, path, json=body)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = client.request(method, path, json=body, headers={"X-API-Key": "wrong-key-123"})
    assert r.status_code == 401
    wrong_role = "read" if method != "get" else "ingest"
    r = client.request(method, path, json=body, headers=headers(wrong_role))
    assert r.status_code == 403 and r.json()["error"]["code"] == "role_missing"


def test_validation_errors_and_limits(client: TestClient) -> None:
    r = client.patch("/v1/products/P1", json={"stock_qty": -1}, headers=headers("admin"))
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["code"] == "invalid_request" and err["details"][0]["field"] == "body.stock_qty"
    r = client.put(
        "/v1/products",
        content=b'{"products": [' + b'{"product_id": "x", "title": "y"},' * 200_000 + b"{}]}",
        headers={**headers("admin"), "content-type": "application/json"},
    )
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    r = client.get("/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_completeness_report(client: TestClient) -> None:
    client.put("/v1/products", json={"products": ROWS}, headers=headers("admin"))
    rep = client.get("/v1/catalog/report", headers=headers("read")).json()
    assert rep["overall"]["products"] == 2
    assert rep["overall"]["missing_share"]["brand"] == 0.5
    assert rep["overall"]["missing_share"]["category"] == 1.0
