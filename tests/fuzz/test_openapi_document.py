"""The published OpenAPI document: links that resolve, union tags that are required
(src/shelfwise/api/openapi.py), and the app answering as the document says."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient

from shelfwise.api import create_app
from shelfwise.api.openapi import LINKS
from shelfwise.config import Settings, load_settings
from shelfwise.values import ID_PATTERN, PATH_ID_PATTERN, path_id_list_schema, stripped_id_pattern
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


def _nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


def test_bounds_and_id_keys_are_stated_as_json_schema_states_them() -> None:
    document = openapi_document()
    numbers = [n for n in _nodes(document) if n.get("type") in ("integer", "number")]
    assert not [n for n in numbers if {"ge", "gt", "le", "lt"} & set(n)]
    assert not [n for n in _nodes(document) if "patternProperties" in n]
    patch = document["components"]["schemas"]["ProductPatch"]["properties"]
    assert patch["price"]["anyOf"][0] == {
        "type": "number",
        "exclusiveMinimum": 0,
        "exclusiveMaximum": 1e9,
    }
    segments = document["components"]["schemas"]["Scope"]["properties"]["segments"]
    assert segments["propertyNames"] == {"pattern": stripped_id_pattern(ID_PATTERN, 128)}
    assert segments["additionalProperties"]["type"] == "array"


def test_the_recommendations_query_is_the_request_model_as_a_query_string() -> None:
    settings = load_settings(database_url="sqlite://", model_watch_seconds=0, max_k=40)
    document = create_app(settings).openapi()
    query = {p["name"]: p for p in document["paths"]["/v1/recommendations"]["get"]["parameters"]}
    body = document["components"]["schemas"]["RecommendRequest"]["properties"]
    assert list(query) == list(body)
    placement = query["placement"]["schema"]
    assert query["placement"]["required"]
    assert placement == {"type": "string", "pattern": stripped_id_pattern(PATH_ID_PATTERN, 64)}
    assert query["k"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 40}
    assert body["k"]["anyOf"][0]["maximum"] == 40
    assert query["item"]["schema"] == path_id_list_schema(128, 20)
    assert query["cart"]["schema"] == path_id_list_schema(128, 200)
    assert query["person"]["schema"]["anyOf"][0]["pattern"] == stripped_id_pattern(ID_PATTERN, 128)


def test_an_event_batch_is_any_values_up_to_max_batch_size() -> None:
    settings = load_settings(database_url="sqlite://", model_watch_seconds=0, max_batch_size=7)
    operation = create_app(settings).openapi()["paths"]["/v1/events"]["post"]
    batch, wrapped = operation["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert batch["maxItems"] == 7 and "type" not in batch["items"]
    assert wrapped["additionalProperties"] is False
    assert wrapped["properties"]["events"] == batch
