"""The published OpenAPI document: links that resolve, union tags that are required
(src/shelfwise/api/openapi.py), and the app answering as the document says."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi.testclient import TestClient

from shelfwise.api import create_app
from shelfwise.api.openapi import LINKS
from shelfwise.config import Settings
from tests.conftest import headers
from tests.fuzz.schema import openapi_document


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def test_every_link_is_published_and_resolves() -> None:
    document = openapi_document()
    published = {
        (method, path, status): sorted(response.get("links", {}))
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
        if response.get("links")
    }
    assert published == {key: sorted(link.name for link in links) for key, links in LINKS.items()}
    # schemathesis refuses a link whose target operation or parameter does not exist.
    schema = schemathesis.openapi.from_dict(document)
    schema.config.phases.stateful.inference.algorithms = []
    machine = schema.as_state_machine()
    transitions = {
        (link.source.label, link.name, link.target.label)
        for entry in machine._transitions.operations.values()
        for link in entry.outgoing
    }
    assert ("POST /v1/rules", "UpdateRule", "PUT /v1/rules/{rule_id}") in transitions
    assert len(transitions) == sum(len(links) for links in LINKS.values())


def test_a_rule_type_is_required_in_the_document() -> None:
    components = openapi_document()["components"]["schemas"]
    for name in ("SuppressRule", "PinRule", "ExcludeRule-Input", "CapRule"):
        assert components[name]["required"][0] == "type"


def test_a_rule_without_a_type_is_refused_as_the_document_says(client: TestClient) -> None:
    rule = {"id": "no-type", "reason": "fuzz", "values": ["x"]}
    answer = client.post("/v1/rules", json=rule, headers=headers("merchandiser"))
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "invalid_request"
    typed = client.post(
        "/v1/rules", json={**rule, "type": "suppress"}, headers=headers("merchandiser")
    )
    assert typed.status_code == 201, typed.text
    assert typed.json()["type"] == "suppress"
