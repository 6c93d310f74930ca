"""Snowplow tracker events (the ``payload_data`` a tracker POSTs) -> shelfwise events.

Snowplow's e-commerce plugin sends a self-describing ``snowplow_ecommerce_action``
event (``ue_pr``, or base64 ``ue_px``) whose ``type`` says what happened, with the
products and the transaction as context entities (``co``, or base64 ``cx``). Common
fields: ``eid`` -> ``event_id``; ``ttm`` (else ``dtm``, milliseconds) ->
``occurred_at``; ``duid`` (else ``uid``) -> ``anonymous_id``; ``uid`` ->
``customer_id``; ``sid`` -> ``session_id``; ``ua`` -> ``user_agent``.

==========================  ==================================================
``snowplow_ecommerce_action``  shelfwise
==========================  ==================================================
product_view                 product_view (the product entity's id, price, currency)
add_to_cart                  add_to_cart (+ quantity)
remove_from_cart             remove_from_cart (product id, quantity)
transaction                  purchase (transaction entity's transaction_id,
                             revenue, currency; product entities -> lines)
page view (``e=pv``)         page_view, page_type other
anything else                ignored (``event_not_mapped``)
==========================  ==================================================
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from shelfwise.contracts.external import (
    Ignored,
    Malformed,
    Mapped,
    as_object,
    epoch_ms,
    external_id,
)

ECOMMERCE = "iglu:com.snowplowanalytics.snowplow.ecommerce/"
ACTION = ECOMMERCE + "snowplow_ecommerce_action/"
PRODUCT = ECOMMERCE + "product/"
TRANSACTION = ECOMMERCE + "transaction/"


def _json(plain: Any, encoded: Any) -> Any:
    """A field sent as JSON text or as base64url-encoded JSON; None when unreadable."""
    text = plain
    if text is None and isinstance(encoded, str):
        try:
            text = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            return None
    if not isinstance(text, (str, bytes)):
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def _entities(payload: dict[str, Any], schema: str) -> list[dict[str, Any]]:
    contexts = as_object(_json(payload.get("co"), payload.get("cx")))
    data = contexts.get("data")
    return [
        as_object(e.get("data"))
        for e in (data if isinstance(data, list) else [])
        if isinstance(e, dict) and str(e.get("schema", "")).startswith(schema)
    ]


def _common(payload: dict[str, Any]) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": payload.get("eid"),
        "occurred_at": epoch_ms(payload.get("ttm") or payload.get("dtm")),
        "anonymous_id": payload.get("duid") or payload.get("uid"),
    }
    for source, target in (("uid", "customer_id"), ("sid", "session_id"), ("ua", "user_agent")):
        if payload.get(source) is not None:
            event[target] = payload[source]
    return event


def _some(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _action(payload: dict[str, Any]) -> str | None:
    outer = as_object(_json(payload.get("ue_pr"), payload.get("ue_px")))
    inner = as_object(outer.get("data"))
    if not str(inner.get("schema", "")).startswith(ACTION):
        return None
    kind = as_object(inner.get("data")).get("type")
    return kind if isinstance(kind, str) else None


def map_snowplow(payload: Any) -> Mapped:
    """One tracker event -> a shelfwise event (not yet validated), ignored, or malformed."""
    if not isinstance(payload, dict) or not isinstance(payload.get("e"), str):
        return Malformed("not_a_snowplow_event", "a Snowplow tracker event is an object with 'e'")
    event = _common(payload)
    if payload["e"] == "pv":
        return {**event, "type": "page_view", "page_type": "other"}
    action = _action(payload) if payload["e"] == "ue" else None
    products = _entities(payload, PRODUCT)
    first = products[0] if products else {}
    if action in ("product_view", "add_to_cart", "remove_from_cart"):
        event = {**event, "type": action, **_some(product_id=external_id(first.get("id")))}
        if action == "product_view":
            return {**event, **_some(price=first.get("price"), currency=first.get("currency"))}
        if action == "add_to_cart":
            return {
                **event,
                **_some(
                    quantity=first.get("quantity"),
                    unit_price=first.get("price"),
                    currency=first.get("currency"),
                ),
            }
        return {**event, **_some(quantity=first.get("quantity"))}
    if action == "transaction":
        transactions = _entities(payload, TRANSACTION)
        txn = transactions[0] if transactions else {}
        lines = [
            _some(
                product_id=external_id(p.get("id")),
                quantity=p.get("quantity", 1),
                unit_price=p.get("price"),
            )
            for p in products
        ]
        return {
            **event,
            "type": "purchase",
            "lines": lines,
            **_some(
                order_id=external_id(txn.get("transaction_id")),
                revenue=txn.get("revenue"),
                currency=txn.get("currency"),
            ),
        }
    what = f"e-commerce action {action!r}" if action else f"event kind {payload['e']!r}"
    return Ignored("event_not_mapped", f"Snowplow {what} has no shelfwise counterpart")
