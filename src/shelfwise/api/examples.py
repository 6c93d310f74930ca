"""An example of every request body and path parameter, for the OpenAPI document.

Client generators and the /docs "Try it out" start from these. Each body is one a
store would send; tests/fuzz/test_openapi_document.py checks that every body
operation has one, that it fits its schema and that the server accepts it.
"""

from __future__ import annotations

from typing import Any

T = "2026-11-27T12:00:00Z"
_VIEW = {
    "type": "product_view",
    "event_id": "e-1001",
    "occurred_at": T,
    "anonymous_id": "anon-42",
    "session_id": "s-7",
    "product_id": "DUV-200-W",
    "price": 89.0,
    "currency": "EUR",
}
_CART = {
    "type": "add_to_cart",
    "event_id": "e-1002",
    "occurred_at": T,
    "anonymous_id": "anon-42",
    "product_id": "DUV-200-W",
    "quantity": 1,
    "unit_price": 89.0,
    "currency": "EUR",
    "placement": "product-page",
    "rec_id": "r-9f2c",
}
_RULE = {
    "id": "no-slow-shipping",
    "type": "exclude",
    "reason": "never recommend items that ship in more than 10 days",
    "when": {"attr": "sla_days", "op": "gt", "value": 10},
}
_EXPERIMENT = {
    "experiment_id": "home-picks-ab",
    "name": "Home top picks: ranked vs popular",
    "placement": "home",
    "arms": [
        {"name": "popular", "share": 0.5, "sources": ["popular"]},
        {"name": "ranked", "share": 0.5},
    ],
    "start": "2027-01-04T00:00:00Z",
    "guardrails": [{"metric": "ctr", "margin": 0.1}],
}
_SEGMENT = {
    "batch": [
        {
            "type": "track",
            "event": "Product Added",
            "messageId": "ajs-5f1c",
            "anonymousId": "anon-42",
            "timestamp": T,
            "properties": {
                "product_id": "DUV-200-W",
                "quantity": 1,
                "price": 89.0,
                "currency": "EUR",
            },
        }
    ]
}
_SNOWPLOW = {
    "schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
    "data": [
        {
            "e": "ue",
            "eid": "b1e4c1d2-0b5a-4f7e-9d3c-2f6a1e8b7c90",
            "dtm": "1764244800000",
            "duid": "anon-42",
            "ue_pr": '{"schema":"iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",'
            '"data":{"schema":"iglu:com.snowplowanalytics.snowplow.ecommerce/'
            'snowplow_ecommerce_action/jsonschema/1-0-2","data":{"type":"product_view"}}}',
            "co": '{"schema":"iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0",'
            '"data":[{"schema":"iglu:com.snowplowanalytics.snowplow.ecommerce/product/'
            'jsonschema/1-0-0","data":{"id":"DUV-200-W","price":89,"currency":"EUR"}}]}',
        }
    ],
}

# (method, path) -> an example request body
BODIES: dict[tuple[str, str], Any] = {
    ("post", "/v1/recommendations"): {
        "placement": "product_similar",
        "person": "anon-42",
        "item": ["DUV-200-W"],
        "k": 8,
    },
    ("put", "/v1/products"): {
        "products": [
            {
                "product_id": "DUV-200-W",
                "title": "Linen duvet cover 200x200 white",
                "category_path": "home/bedding/duvet covers",
                "brand": "Softloom",
                "price": 89.0,
                "currency": "EUR",
                "cost": 38.0,
                "stock_qty": 12,
                "variant_group": "DUV-200",
                "shipping_sla_days": 2,
            }
        ]
    },
    ("patch", "/v1/products"): {
        "changes": [
            {"product_id": "DUV-200-W", "stock_qty": 0},
            {"product_id": "DUV-200-G", "price": 79.0},
        ]
    },
    ("patch", "/v1/products/{product_id}"): {"stock_qty": 4, "price": 84.0},
    ("post", "/v1/keys"): {"name": "storefront", "roles": ["read", "ingest"]},
    ("post", "/v1/experiments"): _EXPERIMENT,
    ("put", "/v1/experiments/{experiment_id}"): {**_EXPERIMENT, "name": "Home picks (renamed)"},
    ("post", "/v1/rules"): _RULE,
    ("put", "/v1/rules/{rule_id}"): {**_RULE, "when": {"attr": "sla_days", "op": "gt", "value": 7}},
    ("post", "/v1/rules/{rule_id}/restore"): {"version": 1, "why": "undo the stricter cutoff"},
    ("post", "/v1/rules/preview"): {
        "rules": [_RULE],
        "k": 4,
        "requests": [
            {
                "placement": "product_similar",
                "now": T,
                "context_items": ["DUV-200-W"],
                "candidates": [{"product_id": "PIL-50", "score": 0.9}, "MUG-1"],
            }
        ],
    },
    ("post", "/v1/events"): [_VIEW, _CART],
    ("post", "/v1/events/segment"): _SEGMENT,
    ("post", "/v1/events/snowplow"): _SNOWPLOW,
    ("post", "/v1/models/reload"): {"version": "20261127-0300"},
}

# path parameter -> an example value
PARAMETERS: dict[str, str] = {
    "product_id": "DUV-200-W",
    "rule_id": "no-slow-shipping",
    "experiment_id": "home-picks-ab",
    "key_id": "k-3b9f",
    "rec_id": "r-9f2c",
    "any_id": "anon-42",
    "person_id": "anon-42",
}

# query parameter -> an example value
QUERY: dict[str, Any] = {"placement": "product_similar", "item": "DUV-200-W", "person": "anon-42"}


def add_examples(document: dict[str, Any]) -> dict[str, Any]:
    """Write :data:`BODIES`, :data:`PARAMETERS` and :data:`QUERY` into the document (in place)."""
    paths = document["paths"]
    for (method, path), body in BODIES.items():
        content = paths[path][method]["requestBody"]["content"]["application/json"]
        content["example"] = body
    for operations in paths.values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                where, name = parameter.get("in"), parameter["name"]
                if where == "path" and name in PARAMETERS:
                    parameter["example"] = PARAMETERS[name]
                elif where == "query" and name in QUERY:
                    parameter["example"] = QUERY[name]
    return document
