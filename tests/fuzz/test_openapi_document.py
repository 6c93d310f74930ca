"""The published OpenAPI document: links that resolve, union tags that are required
(src/shelfwise/api/openapi.py), and the app answering as the document says."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from fastapi.testclient import TestClient

from shelfwise.api import create_app
from shelfwise.api.examples import BODIES, PARAMETERS
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
    # The request model's fields, then the storefront's customer token (api/customers.py).
    assert list(query) == [*body, "customer_token", "X-Customer-Token"]
    assert query["customer_token"]["in"] == "query"
    assert query["X-Customer-Token"]["in"] == "header"
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


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield method, path, operation


def test_security_schemes_and_who_may_call_what() -> None:
    document = openapi_document()
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKeyHeader"] == {
        **schemes["ApiKeyHeader"],
        "in": "header",
        "name": "X-API-Key",
    }
    assert schemes["BearerToken"]["scheme"] == "bearer"
    public = {p for m, p, op in _operations(document) if op["security"] == []}
    assert public == {"/health", "/ready"}
    for method, path, operation in _operations(document):
        secured = operation["security"] != []
        # A key is refused (401) or lacks the role (403) exactly where a key is asked for.
        assert ({"401", "403"} <= set(operation["responses"])) == secured, (method, path)
        # 400: a body FastAPI parses and cannot decode; the events bodies are read by hand.
        body = "requestBody" in operation and not path.startswith("/v1/events")
        assert ("400" in operation["responses"]) == body, (method, path)
    rules = document["paths"]["/v1/rules"]["post"]
    assert "`merchandiser` role" in rules["description"]


def test_each_operation_lists_its_own_error_codes() -> None:
    paths = openapi_document()["paths"]
    put_rule = paths["/v1/rules/{rule_id}"]["put"]["responses"]
    assert put_rule["409"]["content"]["application/json"]["example"]["error"]["code"] == (
        "stale_version"
    )
    assert "`rule_not_found`" in put_rule["404"]["description"]
    assert "428" in paths["/v1/experiments/{experiment_id}"]["put"]["responses"]
    assert "428" not in put_rule
    assert set(paths["/health"]["get"]["responses"]) == {"200"}
    assert set(paths["/v1/keys"]["get"]["responses"]) == {"200", "401", "403", "503"}
    events = paths["/v1/events"]["post"]["responses"]
    assert "`batch_too_large`" in events["413"]["description"]
    # What a storefront key naming a customer may be answered, where it may be.
    tokens = ("required", "invalid", "expired", "mismatch")
    for method, path in (("get", "/v1/recommendations"), ("post", "/v1/recommendations")):
        forbidden = paths[path][method]["responses"]["403"]["description"]
        assert all(f"`customer_token_{c}`" in forbidden for c in tokens), (method, path)
    assert all(f"`customer_token_{c}`" in events["403"]["description"] for c in tokens)
    keys = paths["/v1/keys"]["post"]["responses"]["403"]["description"]
    assert "customer_token" not in keys
    assert "404" not in events
    for *_, operation in _operations(openapi_document()):
        for status, response in operation["responses"].items():
            if status >= "400":
                body = response["content"]["application/json"]
                assert body["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}
                assert f"`{body['example']['error']['code']}`" in response["description"]


def test_every_request_body_has_an_example_that_fits_its_schema() -> None:
    document = openapi_document()
    with_body = 0
    for method, path, operation in _operations(document):
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert "example" in parameter, (method, path, parameter["name"])
        if "requestBody" not in operation:
            continue
        with_body += 1
        content = operation["requestBody"]["content"]["application/json"]
        assert "example" in content, (method, path)
        schema = {**content["schema"], "components": document["components"]}
        errors = [
            e.message for e in jsonschema_rs.validator_for(schema).iter_errors(content["example"])
        ]
        assert errors == [], (method, path, errors)
    assert with_body == len(BODIES)


def test_every_example_is_accepted_as_well_formed(client: TestClient) -> None:
    """The server may refuse an example for a reason of its own (a rule at another
    version, an unknown product) but never as malformed."""
    for (method, path), body in BODIES.items():
        url = path.format(**PARAMETERS)
        answer = client.request(method.upper(), url, json=body, headers=headers("admin"))
        assert answer.status_code < 500, (method, path, answer.text)
        if answer.status_code == 422:
            assert answer.json()["error"]["code"] != "invalid_request", (method, path, answer.text)
