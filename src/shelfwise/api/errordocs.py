"""Each operation's security and the errors it can really answer with, in the OpenAPI document.

**Security.** An operation behind ``require(role)`` lists the two ways of presenting
a key (``X-API-Key`` header or ``Authorization: Bearer``) and names the role in its
description; a public one (``/health``, ``/ready``) says ``security: []``.

**Errors.** Every error answer has the body ``{"error": {code, message, request_id}}``
(:class:`~shelfwise.api.errors.ErrorResponse`). Which statuses an operation can
answer follows from what it is, the way :mod:`shelfwise.api.errors` maps failures:

- 400 ``bad_request``: FastAPI parses its body, and answers a body it cannot decode
  (not UTF-8 JSON) so (the bodies read by hand answer 422 ``invalid_json``);
- 401 ``unauthorized`` / 403 ``role_missing``: it requires a role; 403
  ``origin_not_allowed`` and 429 ``rate_limited`` too when a ``storefront`` key may
  call it (api/storefront.py);
- 404: it names a resource in its path (the code per resource below);
- 409 ``conflict`` / 422 ``invalid_value``: it writes, and the store may refuse the write;
- 413 ``payload_too_large`` / ``document_too_large`` and 422 ``document_too_deep``: it
  takes a body (api/middleware.py bounds every body);
- 422 ``invalid_request``: it takes parameters or a body;
- 503 ``database_unavailable``: it touches the store (all but ``/health``);

plus :data:`OWN_ERRORS`, the codes an operation raises itself. Each status is listed
with its codes and an example body. The fuzzing in tests/fuzz checks that no
operation answers with a status it does not list.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIRouter

from shelfwise.api.errors import error_document

API_KEY = "ApiKeyHeader"
BEARER = "BearerToken"
QUERY_KEY = "StorefrontKeyQuery"
SECURITY_SCHEMES = {
    API_KEY: {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "An API key (`shelfwise keys create`); its roles decide what it may do.",
    },
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "description": "The same API key as `Authorization: Bearer <key>`.",
    },
    QUERY_KEY: {
        "type": "apiKey",
        "in": "query",
        "name": "key",
        "description": "A `storefront` key (only) as `?key=`: what `navigator.sendBeacon` "
        "can send, and no CORS preflight per URL (docs/storefront.md).",
    },
}
# A storefront key naming a customer (api/customers.py).
CUSTOMER_TOKEN_CODES = (
    "customer_token_required",
    "customer_token_invalid",
    "customer_token_expired",
    "customer_token_mismatch",
)
ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
WRITES = frozenset({"post", "put", "patch", "delete"})
# POSTs that only read: a slate asked with a body, a rule preview.
READS = frozenset({("post", "/v1/recommendations"), ("post", "/v1/rules/preview")})
PUBLIC_NO_STORE = frozenset({"/health"})
# Routes that check the key by hand (the storefront's hot path) rather than by dependency.
ROLE_BY_HAND = {("get", "/v1/recommendations"): "read|storefront"}

_STATUS_TEXT = {
    400: "The body cannot be decoded.",
    401: "No valid API key.",
    403: "The key lacks the operation's role (a storefront key: or its origin, or the "
    "customer token a customer's history needs).",
    404: "Not found.",
    409: "Conflicts with what is stored; nothing was written.",
    413: "The body is too large.",
    422: "The request is not valid.",
    429: "Over a storefront key's rate limit; retry after `Retry-After` seconds.",
    428: "The change needs the version it applies to (If-Match).",
    503: "The store is unreachable; retry later (nothing was half-written).",
}

# (method, path) -> status -> the operation's own codes, besides the derived ones.
OWN_ERRORS: dict[tuple[str, str], dict[int, tuple[str, ...]]] = {
    ("get", "/v1/recommendations"): {404: ("placement_not_found",), 422: ("invalid_clock",)},
    ("post", "/v1/recommendations"): {404: ("placement_not_found",), 422: ("invalid_clock",)},
    ("post", "/v1/models/reload"): {
        404: ("model_not_found",),
        409: ("bundle_incomplete", "bundle_corrupt", "bundle_invalid"),
    },
    ("get", "/v1/decisions/{rec_id}"): {404: ("decision_not_found",)},
    ("put", "/v1/products"): {413: ("batch_too_large",)},
    ("patch", "/v1/products"): {404: ("product_not_found",), 422: ("patch_empty",)},
    ("get", "/v1/products/{product_id}"): {404: ("product_not_found",)},
    ("patch", "/v1/products/{product_id}"): {404: ("product_not_found",), 422: ("patch_empty",)},
    ("get", "/v1/products/{product_id}/history"): {404: ("product_not_found",)},
    ("post", "/v1/keys"): {422: ("key_roles_empty", "key_expiry_invalid")},
    ("delete", "/v1/keys/{key_id}"): {404: ("key_not_found",)},
    ("post", "/v1/experiments"): {409: ("experiment_exists", "layer_overlap")},
    ("put", "/v1/experiments/{experiment_id}"): {
        404: ("experiment_not_found",),
        409: ("stale_version", "experiment_stopped", "assignment_locked", "layer_overlap"),
        422: ("invalid_if_match", "id_mismatch"),
        428: ("if_match_required",),
    },
    ("post", "/v1/experiments/{experiment_id}/stop"): {
        404: ("experiment_not_found",),
        409: ("stale_version",),
        422: ("invalid_if_match",),
    },
    ("get", "/v1/monitoring/metrics"): {422: ("invalid_dimension",)},
    ("get", "/v1/monitoring/coherence"): {404: ("placement_not_found",)},
    ("post", "/v1/rules"): {409: ("rule_exists",)},
    ("put", "/v1/rules/{rule_id}"): {
        404: ("rule_not_found",),
        409: ("stale_version",),
        422: ("bad_if_match", "id_mismatch", "version_required"),
    },
    ("delete", "/v1/rules/{rule_id}"): {
        404: ("rule_not_found",),
        409: ("stale_version",),
        422: ("bad_if_match", "version_required"),
    },
    ("post", "/v1/rules/{rule_id}/restore"): {404: ("rule_not_found", "rule_version_not_found")},
    ("post", "/v1/rules/preview"): {422: ("preview_no_requests", "placement_unknown")},
    ("post", "/v1/events"): {
        413: ("batch_too_large",),
        422: ("invalid_json", "invalid_batch", "document_too_deep"),
    },
    ("delete", "/v1/people/{person_id}"): {404: ("person_not_found",)},
}
for _tracker in ("segment", "snowplow"):
    OWN_ERRORS[("post", f"/v1/events/{_tracker}")] = {
        413: ("batch_too_large",),
        422: ("invalid_json", "invalid_batch"),
    }
for _verb in ("disable", "enable"):
    OWN_ERRORS[("post", f"/v1/rules/{{rule_id}}/{_verb}")] = OWN_ERRORS[
        ("delete", "/v1/rules/{rule_id}")
    ]
for _sub in ("", "/history", "/report"):
    OWN_ERRORS.setdefault(("get", f"/v1/experiments/{{experiment_id}}{_sub}"), {})[404] = (
        "experiment_not_found",
    )
OWN_ERRORS.setdefault(("get", "/v1/rules/{rule_id}"), {})[404] = ("rule_not_found",)
OWN_ERRORS.setdefault(("get", "/v1/rules/{rule_id}/history"), {})[404] = ("rule_not_found",)


def role_of(dependant: Dependant) -> str | None:
    """The roles a route's dependencies accept, ``|``-separated (``require(*roles)``
    names its dependency ``require_<role>|<role>``), or None for a public route."""
    for dep in dependant.dependencies:
        name = getattr(dep.call, "__name__", "")
        if name.startswith("require_"):
            return name.removeprefix("require_")
        found = role_of(dep)
        if found is not None:
            return found
    return None


def _derived(
    method: str,
    path: str,
    operation: dict[str, Any],
    secured: bool,
    parsed_body: bool,
    storefront: bool = False,
) -> dict[int, list[str]]:
    params = operation.get("parameters", [])
    body = "requestBody" in operation
    codes: dict[int, list[str]] = {}

    def add(status: int, *names: str) -> None:
        codes[status] = [*codes.get(status, []), *names]

    if parsed_body:
        add(400, "bad_request")
    if secured:
        add(401, "unauthorized")
        add(403, "role_missing")
    if storefront:
        add(403, "origin_not_allowed", *CUSTOMER_TOKEN_CODES)
        add(429, "rate_limited")
    if any(p.get("in") == "path" for p in params):
        add(404, "not_found")
    if method in WRITES and (method, path) not in READS:
        add(409, "conflict")
        add(422, "invalid_value")
    if body:
        add(413, "payload_too_large", "document_too_large")
        add(422, "invalid_request", "document_too_deep")
    elif params:
        add(422, "invalid_request")
    if path not in PUBLIC_NO_STORE:
        add(503, "database_unavailable")
    for status, own in OWN_ERRORS.get((method, path), {}).items():
        # The operation's own codes first: they are the informative ones.
        generic = [c for c in codes.get(status, []) if c not in own and c != "not_found"]
        codes[status] = [*own, *generic]
    return codes


def _response(status: int, codes: list[str]) -> dict[str, Any]:
    listed = ", ".join(f"`{c}`" for c in codes)
    example = error_document(codes[0], _STATUS_TEXT[status], "3f1c9a2e7b4d4e0f")
    return {
        "description": f"{_STATUS_TEXT[status]} Codes: {listed}.",
        "content": {"application/json": {"schema": ERROR_REF, "example": example}},
    }


def describe(document: dict[str, Any], routers: Iterable[APIRouter]) -> dict[str, Any]:
    """Write security schemes, each operation's security and its real error answers (in
    place), for the routes of ``routers`` (the app's own list: FastAPI's way of
    flattening included routers is private and changes between releases)."""
    document.setdefault("components", {})["securitySchemes"] = SECURITY_SCHEMES
    paths = document["paths"]
    for route in (r for router in routers for r in router.routes):
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        for method in sorted(m.lower() for m in route.methods or ()):
            role = ROLE_BY_HAND.get((method, route.path_format)) or role_of(route.dependant)
            operation = paths.get(route.path_format, {}).get(method)
            if operation is None:
                continue
            if role is None:
                operation["security"] = []
            else:
                operation["security"] = [{API_KEY: []}, {BEARER: []}]
                if "storefront" in role.split("|"):
                    operation["security"].append({QUERY_KEY: []})
                named = " or the ".join(f"`{r}` role" for r in role.split("|"))
                note = f"Requires an API key with the {named} (or `admin`)."
                operation["description"] = f"{operation.get('description', '')}\n\n{note}".strip()
            responses = operation["responses"]
            for status in [s for s in responses if s.startswith(("4", "5"))]:
                del responses[status]
            parsed_body = route.body_field is not None
            storefront = role is not None and "storefront" in role.split("|")
            derived = _derived(
                method, route.path_format, operation, role is not None, parsed_body, storefront
            )
            for status, codes in sorted(derived.items()):
                responses[str(status)] = _response(status, codes)
    return document
