"""Key rotation without downtime: create, use, revoke; another worker follows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from shelfwise.access import KeyRing, KeyStore
from shelfwise.api import create_app
from shelfwise.config import Settings
from shelfwise.runtime import Runtime
from tests.conftest import headers


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def test_create_use_and_revoke_a_key(client: TestClient, settings: Settings) -> None:
    r = client.post(
        "/v1/keys", json={"name": "storefront", "roles": ["read"]}, headers=headers("admin")
    )
    assert r.status_code == 201
    created = r.json()
    secret = created["secret"]
    assert secret.startswith("sw_")
    assert created["roles"] == ["read"]
    mine = {"X-API-Key": secret}
    assert client.get("/v1/products", headers=mine).status_code == 200
    assert client.put("/v1/products", json={"products": [{}]}, headers=mine).status_code == 403

    listed = client.get("/v1/keys", headers=headers("admin")).json()
    assert [k["name"] for k in listed] == ["storefront"]
    assert "secret" not in listed[0]
    assert "sha256" not in listed[0]

    # A second worker with its own key cache (refresh every read, as after 2 s).
    other = Runtime.open(settings)
    try:
        ring = KeyRing(settings.api_keys, KeyStore(other.db), refresh_seconds=0)
        assert ring.authenticate(secret) is not None
        r = client.delete(f"/v1/keys/{created['key_id']}", headers=headers("admin"))
        assert r.status_code == 200
        assert r.json()["revoked_at"] is not None
        assert ring.authenticate(secret) is None
    finally:
        other.close()
    assert client.get("/v1/products", headers=mine).status_code == 401


def test_key_admin_needs_admin(client: TestClient) -> None:
    body = {"name": "x", "roles": ["read"]}
    assert client.post("/v1/keys", json=body).status_code == 401
    assert client.post("/v1/keys", json=body, headers=headers("merchandiser")).status_code == 403
    assert client.delete("/v1/keys/nope", headers=headers("admin")).status_code == 404
    r = client.post("/v1/keys", json={"name": "x", "roles": ["root"]}, headers=headers("admin"))
    assert r.status_code == 422
