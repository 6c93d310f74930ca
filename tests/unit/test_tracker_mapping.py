"""Segment and Snowplow messages -> shelfwise events: total on any JSON, faithful on the spec."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from shelfwise.contracts.events import parse_event
from shelfwise.contracts.external import Ignored, Malformed, epoch_ms
from shelfwise.contracts.segment import map_segment
from shelfwise.contracts.snowplow import map_snowplow

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
KEYS = st.sampled_from(
    ["type", "event", "properties", "messageId", "e", "ue_pr", "ue_px", "co", "cx", "batch", "data"]
)
SHAPED = st.dictionaries(KEYS, JSON | st.sampled_from(["track", "Product Added", "ue", "pv"]))


@given(JSON | SHAPED)
def test_mappers_answer_any_json(message: Any) -> None:
    for mapper in (map_segment, map_snowplow):
        out = mapper(message)
        assert isinstance(out, (dict, Ignored, Malformed))
        if isinstance(out, dict):
            assert isinstance(out["type"], str)


IDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)
LINES = st.lists(
    st.tuples(IDS | st.integers(1, 10**9), st.integers(1, 50), st.integers(1, 10**6)),
    min_size=1,
    max_size=10,
)


@given(mid=IDS, person=IDS, lines=LINES)
def test_segment_order_is_a_valid_purchase_with_the_same_lines(
    mid: str, person: str, lines: list[tuple[str | int, int, int]]
) -> None:
    products = [{"product_id": p, "quantity": q, "price": c / 100} for p, q, c in lines]
    revenue = round(sum(q * c for _, q, c in lines) / 100, 2)
    message = {
        "type": "track",
        "event": "Order Completed",
        "messageId": mid,
        "anonymousId": person,
        "timestamp": "2026-11-01T12:00:00Z",
        "properties": {
            "order_id": "o-1",
            "currency": "EUR",
            "revenue": revenue,
            "products": products,
        },
    }
    event = parse_event(map_segment(message))
    assert (event.type, event.event_id, event.anonymous_id) == ("purchase", mid, person)
    assert [(line.product_id, line.quantity, line.unit_price) for line in event.lines] == [  # type: ignore[union-attr]
        (str(p), q, c / 100) for p, q, c in lines
    ]


def _ue(action: str) -> str:
    inner = {
        "schema": "iglu:com.snowplowanalytics.snowplow.ecommerce/snowplow_ecommerce_action/jsonschema/1-0-2",
        "data": {"type": action},
    }
    return json.dumps(
        {
            "schema": "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
            "data": inner,
        }
    )


@given(pid=IDS, quantity=st.integers(1, 99), ms=st.integers(946_684_800_000, 4_000_000_000_000))
def test_snowplow_add_to_cart_plain_or_base64(pid: str, quantity: int, ms: int) -> None:
    product = {
        "schema": "iglu:com.snowplowanalytics.snowplow.ecommerce/product/jsonschema/1-0-0",
        "data": {"id": pid, "quantity": quantity, "price": 5, "currency": "EUR"},
    }
    contexts = json.dumps(
        {
            "schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0",
            "data": [product],
        }
    )
    common = {"e": "ue", "eid": "e-1", "dtm": str(ms), "duid": "d-1"}
    plain = map_snowplow({**common, "ue_pr": _ue("add_to_cart"), "co": contexts})
    encoded = map_snowplow(
        {
            **common,
            "ue_px": base64.urlsafe_b64encode(_ue("add_to_cart").encode()).decode().rstrip("="),
            "cx": base64.urlsafe_b64encode(contexts.encode()).decode(),
        }
    )
    assert plain == encoded
    event = parse_event(plain)
    assert (event.type, event.product_id, event.quantity) == ("add_to_cart", pid, quantity)  # type: ignore[union-attr]
    assert round(event.occurred_at.timestamp() * 1000) == ms


def test_epoch_ms_leaves_what_it_cannot_read() -> None:
    assert epoch_ms("1761998400000") == "2025-11-01T12:00:00Z"
    assert epoch_ms("yesterday") == "yesterday"
    assert epoch_ms(True) is True
