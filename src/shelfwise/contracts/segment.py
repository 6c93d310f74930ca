"""Segment messages (``track``, ``page``, ``screen``, ``identify``) -> shelfwise events.

Segment's e-commerce spec names the events; the common fields map alike for all:
``messageId`` -> ``event_id``; ``timestamp`` (else ``originalTimestamp``, ``sentAt``,
``receivedAt``) -> ``occurred_at``; ``anonymousId`` (else ``userId``) ->
``anonymous_id``; ``userId`` -> ``customer_id``; ``context.userAgent`` ->
``user_agent``; ``properties.rec_id``/``placement`` are kept for attribution.

==========================  =================================================
Segment                      shelfwise
==========================  =================================================
track Product Viewed         product_view (product_id, price, currency)
track Product Added          add_to_cart (+ quantity, price -> unit_price)
track Product Removed        remove_from_cart (product_id, quantity)
track Order Completed        purchase (order_id, currency, revenue else total,
                             products[] -> lines)
track Order Refunded         return (order_id, products[] -> lines)
track Products Searched      page_view, page_type search (query)
track Product List Viewed    page_view, page_type category (category)
page / screen                page_view, page_type other
identify (with userId)       login
anything else                ignored (``event_not_mapped``)
==========================  =================================================
"""

from __future__ import annotations

from typing import Any

from shelfwise.contracts.external import (
    Ignored,
    Malformed,
    Mapped,
    as_object,
    external_id,
)

_PRODUCT_EVENTS = {
    "Product Viewed": "product_view",
    "Product Added": "add_to_cart",
    "Product Removed": "remove_from_cart",
}
_TIMES = ("timestamp", "originalTimestamp", "sentAt", "receivedAt")


def _common(message: dict[str, Any]) -> dict[str, Any]:
    person = message.get("anonymousId") or message.get("userId")
    event: dict[str, Any] = {
        "event_id": message.get("messageId"),
        "occurred_at": next((message[k] for k in _TIMES if message.get(k)), None),
        "anonymous_id": external_id(person),
    }
    if message.get("userId") is not None:
        event["customer_id"] = external_id(message["userId"])
    agent = as_object(message.get("context")).get("userAgent")
    if agent is not None:
        event["user_agent"] = agent
    return event


def _present(event: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """``event`` with the fields the message has (absent ones stay absent)."""
    return {**event, **{k: v for k, v in fields.items() if v is not None}}


def _lines(products: Any) -> Any:
    if not isinstance(products, list):
        return products  # the contract says what is wrong with it
    lines = []
    for product in products:
        item = as_object(product)
        line = _present(
            {},
            product_id=external_id(item.get("product_id", item.get("sku"))),
            quantity=item.get("quantity", 1),
            unit_price=item.get("price"),
            rec_id=item.get("rec_id"),
        )
        lines.append(line)
    return lines


def _track(message: dict[str, Any], props: dict[str, Any]) -> Mapped:
    name = message.get("event")
    if not isinstance(name, str):
        return Malformed("not_a_segment_message", "a track call names its event")
    event = _common(message)
    if name in _PRODUCT_EVENTS:
        kind = _PRODUCT_EVENTS[name]
        event = _present(
            {**event, "type": kind},
            product_id=external_id(props.get("product_id", props.get("sku"))),
        )
        # A view or a cart add keeps the slate it came from (rec_id, placement).
        shown = _present(
            event,
            currency=props.get("currency"),
            placement=props.get("placement"),
            rec_id=props.get("rec_id"),
        )
        if kind == "product_view":
            return _present(shown, price=props.get("price"))
        if kind == "add_to_cart":
            return _present(shown, quantity=props.get("quantity"), unit_price=props.get("price"))
        return _present(event, quantity=props.get("quantity"))
    if name == "Order Completed":
        revenue = props.get("revenue", props.get("total"))
        return _present(
            {**event, "type": "purchase"},
            order_id=external_id(props.get("order_id")),
            currency=props.get("currency"),
            revenue=revenue,
            lines=_lines(props.get("products")),
        )
    if name == "Order Refunded":
        return _present(
            {**event, "type": "return"},
            order_id=external_id(props.get("order_id")),
            lines=_lines(props.get("products")),
        )
    if name == "Products Searched":
        return _present(
            {**event, "type": "page_view", "page_type": "search"}, query=props.get("query")
        )
    if name == "Product List Viewed":
        return _present(
            {**event, "type": "page_view", "page_type": "category"},
            category_path=props.get("category"),
        )
    return Ignored("event_not_mapped", f"Segment event {name!r} has no shelfwise counterpart")


def map_segment(message: Any) -> Mapped:
    """One Segment message -> a shelfwise event (not yet validated), ignored, or malformed."""
    if not isinstance(message, dict):
        return Malformed("not_a_segment_message", "a Segment message is a JSON object")
    kind = message.get("type")
    props = as_object(message.get("properties"))
    if kind == "track":
        return _track(message, props)
    if kind in ("page", "screen"):
        return {**_common(message), "type": "page_view", "page_type": "other"}
    if kind == "identify":
        if message.get("userId") is None:
            return Ignored("event_not_mapped", "an identify call without userId links no one")
        return {**_common(message), "type": "login"}
    if kind in ("group", "alias"):
        return Ignored("event_not_mapped", f"Segment {kind!r} calls have no shelfwise counterpart")
    return Malformed(
        "not_a_segment_message", "a Segment message has a type: track, page, screen or identify"
    )
