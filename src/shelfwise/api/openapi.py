"""What the generated OpenAPI document does not say by itself: links, required union tags.

**Links**: which answer feeds which next request.

A created rule's ``id`` and ``ETag`` are what ``GET``/``PUT``/``DELETE
/v1/rules/{rule_id}`` need; a served slate's ``rec_id`` is what ``GET
/v1/decisions/{rec_id}`` explains. The links say so in the published schema, for
client generators and for the stateful fuzzing in ``tests/fuzz``, which follows
them to reach past the 404 of a made-up id.

**Union tags**: a discriminated union (a rule is one of eleven types, told apart by
``type``) needs its tag in every request, but each member declares the tag with a
default (``type: Literal["pin"] = "pin"``), so pydantic's JSON Schema leaves it optional.
The document marks it required.

**Bounds and keys**: pydantic's JSON Schema leaves two kinds of constraint in forms
JSON Schema readers do not understand. A bound on an optional number (``price: Float |
None = Field(gt=0)``) comes out as ``gt``/``ge``/``lt``/``le`` keys, which the document
writes as ``exclusiveMinimum``/``minimum``/``exclusiveMaximum``/``maximum``. A mapping
whose keys are ids (``dict[Id, float]``) comes out as ``patternProperties``, which
lets a key that does not match the pattern hold anything; the document says
``propertyNames`` (every key is an id) and ``additionalProperties`` (every value is
the value type), which is what the validator checks. An id's ``maxLength`` counts the
spaces around it, which the validator strips before counting; the document puts the
bound in the id's pattern instead (:func:`shelfwise.values.stripped_id_pattern`; path
segments are not stripped and keep theirs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from shelfwise.api.examples import add_examples
from shelfwise.values import stripped_id_pattern

Operation = tuple[str, str]  # (method, path)

ETAG = "$response.header.ETag"
RULE = "/v1/rules/{rule_id}"
EXPERIMENT = "/v1/experiments/{experiment_id}"
PRODUCT = "/v1/products/{product_id}"


@dataclass(frozen=True)
class Link:
    name: str
    target: Operation
    parameters: dict[str, str] = field(default_factory=dict)
    body: dict[str, str] | None = None


def _rule_links(id_: str, version: str) -> list[Link]:
    at = {"rule_id": id_}
    versioned = {**at, "header.if-match": ETAG}
    return [
        Link("GetRule", ("get", RULE), at),
        Link("UpdateRule", ("put", RULE), versioned, body={"id": id_}),
        Link("DeleteRule", ("delete", RULE), versioned),
        Link("DisableRule", ("post", f"{RULE}/disable"), versioned),
        Link("EnableRule", ("post", f"{RULE}/enable"), versioned),
        Link("RuleHistory", ("get", f"{RULE}/history"), at),
        Link("RestoreRule", ("post", f"{RULE}/restore"), at, body={"version": version}),
    ]


def _experiment_links() -> list[Link]:
    id_ = "$response.body#/spec/experiment_id"
    at = {"experiment_id": id_}
    versioned = {**at, "header.if-match": ETAG}
    return [
        Link("GetExperiment", ("get", EXPERIMENT), at),
        Link("UpdateExperiment", ("put", EXPERIMENT), versioned, body={"experiment_id": id_}),
        Link("StopExperiment", ("post", f"{EXPERIMENT}/stop"), versioned),
        Link("ExperimentHistory", ("get", f"{EXPERIMENT}/history"), at),
        Link("ExperimentReport", ("get", f"{EXPERIMENT}/report"), at),
    ]


def _product_links(id_: str) -> list[Link]:
    at = {"product_id": id_}
    return [
        Link("GetProduct", ("get", PRODUCT), at),
        Link("PatchProduct", ("patch", PRODUCT), at),
        Link("ProductHistory", ("get", f"{PRODUCT}/history"), at),
    ]


def _event_links() -> list[Link]:
    # An event batch is a JSON array or {"events": [...]}; the first event's ids.
    person = "$request.body#/0/anonymous_id"
    return [
        Link("ListQuarantine", ("get", "/v1/quarantine")),
        Link("ReplayQuarantine", ("post", "/v1/quarantine/replay")),
        Link("Identity", ("get", "/v1/identity/{any_id}"), {"any_id": person}),
        Link("ErasePerson", ("delete", "/v1/people/{person_id}"), {"person_id": person}),
    ]


def _decision_links() -> list[Link]:
    return [
        Link("Decision", ("get", "/v1/decisions/{rec_id}"), {"rec_id": "$response.body#/rec_id"})
    ]


RULE_LINKS = _rule_links("$response.body#/id", "$response.body#/version")
LINKS: dict[tuple[str, str, str], list[Link]] = {
    ("post", "/v1/rules", "201"): RULE_LINKS,
    ("get", RULE, "200"): RULE_LINKS,
    ("put", RULE, "200"): RULE_LINKS,
    ("post", f"{RULE}/disable", "200"): RULE_LINKS,
    ("post", f"{RULE}/enable", "200"): RULE_LINKS,
    ("post", f"{RULE}/restore", "200"): RULE_LINKS,
    # A list carries no ETag: a listed rule can be read, not changed.
    ("get", "/v1/rules", "200"): [
        Link("GetRule", ("get", RULE), {"rule_id": "$response.body#/rules/0/id"}),
        Link("RuleHistory", ("get", f"{RULE}/history"), {"rule_id": "$response.body#/rules/0/id"}),
    ],
    ("post", "/v1/experiments", "201"): _experiment_links(),
    ("get", EXPERIMENT, "200"): _experiment_links(),
    ("put", EXPERIMENT, "200"): _experiment_links(),
    ("post", f"{EXPERIMENT}/stop", "200"): _experiment_links(),
    ("post", "/v1/keys", "201"): [
        Link("RevokeKey", ("delete", "/v1/keys/{key_id}"), {"key_id": "$response.body#/key_id"})
    ],
    ("put", "/v1/products", "200"): _product_links("$request.body#/products/0/product_id"),
    ("get", "/v1/products", "200"): _product_links("$response.body#/items/0/product_id"),
    ("patch", "/v1/products", "200"): _product_links("$response.body#/0/product_id"),
    ("patch", PRODUCT, "200"): _product_links("$response.body#/product_id"),
    ("post", "/v1/events", "200"): _event_links(),
    ("get", "/v1/quarantine", "200"): [Link("ReplayQuarantine", ("post", "/v1/quarantine/replay"))],
    ("get", "/v1/recommendations", "200"): _decision_links(),
    ("post", "/v1/recommendations", "200"): _decision_links(),
}


def _walk(node: Any, fix: Callable[[dict[str, Any]], bool]) -> None:
    """``fix`` every object of a JSON document, parents first; below an object only
    where ``fix`` returns True."""
    if isinstance(node, dict):
        if fix(node):
            for value in node.values():
                _walk(value, fix)
    elif isinstance(node, list):
        for value in node:
            _walk(value, fix)


def require_union_tags(schema: dict[str, Any]) -> dict[str, Any]:
    """Mark each discriminated union's tag required in its members (in place)."""
    components = schema.get("components", {}).get("schemas", {})

    def fix(node: dict[str, Any]) -> bool:
        discriminator = node.get("discriminator")
        if isinstance(discriminator, dict):
            tag = discriminator["propertyName"]
            for ref in discriminator.get("mapping", {}).values():
                member = components[ref.rsplit("/", 1)[-1]]
                if tag not in member.setdefault("required", []):
                    member["required"].insert(0, tag)
        return True

    _walk(schema, fix)
    return schema


def add_links(schema: dict[str, Any]) -> dict[str, Any]:
    """Write ``LINKS`` into the responses of an OpenAPI document (in place)."""
    paths = schema["paths"]
    for (method, path, status), links in LINKS.items():
        response = paths[path][method]["responses"][status]
        response["links"] = {link.name: _document(paths, link) for link in links}
    return schema


def _document(paths: dict[str, Any], link: Link) -> dict[str, Any]:
    method, path = link.target
    doc: dict[str, Any] = {"operationId": paths[path][method]["operationId"]}
    if link.parameters:
        doc["parameters"] = dict(link.parameters)
    if link.body is not None:
        doc["requestBody"] = dict(link.body)
    return doc


_BOUNDS = (
    ("ge", "minimum", max),
    ("gt", "exclusiveMinimum", max),
    ("le", "maximum", min),
    ("lt", "exclusiveMaximum", min),
)


def state_constraints(schema: dict[str, Any]) -> dict[str, Any]:
    """Write pydantic's stray bounds and id-keyed mappings as JSON Schema says them
    (in place)."""

    def fix(node: dict[str, Any]) -> bool:
        if node.get("in") == "path":  # path segments are not stripped
            return False
        stripped = stripped_id_pattern(node.get("pattern", ""), node.get("maxLength", 0))
        if stripped is not None:
            node.pop("minLength", None)
            node.pop("maxLength")
            node["pattern"] = stripped
        if node.get("type") in ("integer", "number"):
            for key, keyword, tighter in _BOUNDS:
                if key in node:
                    bound = node.pop(key)
                    node[keyword] = tighter(node[keyword], bound) if keyword in node else bound
        patterns = node.get("patternProperties")
        if (
            node.get("type") == "object"
            and isinstance(patterns, dict)
            and len(patterns) == 1
            and "properties" not in node
            and "additionalProperties" not in node
        ):
            [(pattern, values)] = node.pop("patternProperties").items()
            node["propertyNames"] = {**node.get("propertyNames", {}), "pattern": pattern}
            node["additionalProperties"] = values
        return True

    _walk(schema, fix)
    return schema


def install(app: FastAPI, finish: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Serve the app's OpenAPI document with ``finish`` applied (what the routes add:
    parameters read by hand, security and error answers), examples added
    (:mod:`shelfwise.api.examples`), constraints stated, union tags required and ``LINKS`` added (built once, as
    FastAPI does)."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            if finish is not None:
                finish(document)
            add_examples(document)
            app.openapi_schema = add_links(require_union_tags(state_constraints(document)))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
