"""Every /v1 endpoint against every role: allowed, 401 without a key, 403 with the wrong role.

``REQUIRED`` is the access policy written out; a new endpoint that is not in it
fails the first test, so nothing ships without a declared role.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from shelfwise.api import create_app
from shelfwise.config import Settings
from tests.conftest import KEYS

REQUIRED: dict[tuple[str, str], str] = {
    ("PUT", "/v1/products"): "merchandiser",
    ("GET", "/v1/products"): "read",
    ("PATCH", "/v1/products"): "merchandiser",
    ("GET", "/v1/products/{product_id}"): "read",
    ("PATCH", "/v1/products/{product_id}"): "merchandiser",
    ("GET", "/v1/products/{product_id}/history"): "read",
    ("GET", "/v1/catalog/report"): "read",
    ("POST", "/v1/keys"): "admin",
    ("GET", "/v1/keys"): "admin",
    ("DELETE", "/v1/keys/{key_id}"): "admin",
    ("POST", "/v1/experiments"): "merchandiser",
    ("GET", "/v1/experiments"): "read",
    ("GET", "/v1/experiments/{experiment_id}"): "read",
    ("PUT", "/v1/experiments/{experiment_id}"): "merchandiser",
    ("POST", "/v1/experiments/{experiment_id}/stop"): "merchandiser",
    ("GET", "/v1/experiments/{experiment_id}/history"): "read",
    ("GET", "/v1/experiments/{experiment_id}/report"): "read",
    ("GET", "/v1/monitoring/metrics"): "read",
    ("GET", "/v1/monitoring/drift"): "read",
    ("GET", "/v1/monitoring/coherence"): "read",
    ("GET", "/v1/alerts"): "read",
    ("POST", "/v1/alerts/evaluate"): "admin",
    ("POST", "/v1/events"): "ingest|storefront",
    ("POST", "/v1/events/segment"): "ingest",
    ("POST", "/v1/events/snowplow"): "ingest",
    ("GET", "/v1/recommendations"): "read|storefront",
    ("POST", "/v1/recommendations"): "read|storefront",
    ("GET", "/v1/placements"): "read",
    ("GET", "/v1/decisions/{rec_id}"): "read",
    ("GET", "/v1/models"): "read",
    ("POST", "/v1/models/reload"): "admin",
    ("GET", "/v1/quarantine"): "admin",
    ("POST", "/v1/quarantine/replay"): "admin",
    ("GET", "/v1/signals/report"): "read",
    ("GET", "/v1/signals/reconciliation"): "read",
    ("GET", "/v1/identity/{any_id}"): "read",
    ("DELETE", "/v1/people/{person_id}"): "admin",
    ("GET", "/v1/erasures"): "admin",
    ("GET", "/v1/rules"): "merchandiser",
    ("POST", "/v1/rules"): "merchandiser",
    ("GET", "/v1/rules/{rule_id}"): "merchandiser",
    ("PUT", "/v1/rules/{rule_id}"): "merchandiser",
    ("DELETE", "/v1/rules/{rule_id}"): "merchandiser",
    ("POST", "/v1/rules/{rule_id}/disable"): "merchandiser",
    ("POST", "/v1/rules/{rule_id}/enable"): "merchandiser",
    ("GET", "/v1/rules/{rule_id}/history"): "merchandiser",
    ("POST", "/v1/rules/{rule_id}/restore"): "merchandiser",
    ("POST", "/v1/rules/preview"): "merchandiser",
}
ROLES = ("read", "ingest", "merchandiser", "admin", "storefront")


def _routes(settings: Settings) -> set[tuple[str, str]]:
    paths = create_app(settings).openapi()["paths"]
    return {
        (method.upper(), path)
        for path, ops in paths.items()
        if path.startswith("/v1/")
        for method in ops
    }


def test_every_endpoint_has_a_declared_role(sqlite_settings: Settings) -> None:
    assert _routes(sqlite_settings) == set(REQUIRED)


def test_the_document_names_the_role_each_endpoint_requires(sqlite_settings: Settings) -> None:
    paths = create_app(sqlite_settings).openapi()["paths"]
    for (method, path), roles in REQUIRED.items():
        operation = paths[path][method.lower()]
        for role in roles.split("|"):
            assert f"`{role}` role" in operation["description"], (method, path)
        schemes = [{"ApiKeyHeader": []}, {"BearerToken": []}]
        if "storefront" in roles:  # a browser's key may come as ?key= (sendBeacon)
            schemes.append({"StorefrontKeyQuery": []})
        assert operation["security"] == schemes


@pytest.fixture
def client(sqlite_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(sqlite_settings), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize(("method", "path"), sorted(REQUIRED))
def test_role_matrix(client: TestClient, method: str, path: str) -> None:
    url = re.sub(r"\{[^}]+\}", "x", path)
    assert client.request(method, url).status_code == 401
    assert client.request(method, url, headers={"X-API-Key": "not-a-key-at-all"}).status_code == 401
    needed = REQUIRED[(method, path)]
    for role in ROLES:
        status = client.request(method, url, headers={"X-API-Key": KEYS[role]}).status_code
        allowed = role in (*needed.split("|"), "admin")
        if allowed:
            assert status not in (401, 403), (role, method, path, status)
        else:
            assert status == 403, (role, method, path, status)
