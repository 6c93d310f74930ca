from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from shelfwise.contracts import parse_event
from shelfwise.contracts.checks import SemanticRules, field_path, semantic_problems, shape_problems

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _codes(raw: object) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as e:
        parse_event(raw)
    return [(p.code, p.field) for p in shape_problems(e.value.errors())]


def test_field_path_drops_the_tag_and_indexes_lists() -> None:
    assert field_path(("purchase", "lines", 3, "quantity")) == "lines[3].quantity"
    assert field_path(("event_id",)) == "event_id"


def test_shape_codes() -> None:
    base = {"event_id": "e", "occurred_at": NOW.isoformat(), "anonymous_id": "a"}
    assert _codes({**base}) == [("missing_event_type", "type")]
    assert _codes({**base, "type": "product_view", "product_id": "p", "colour": "red"}) == [
        ("unknown_field", "colour")
    ]
    assert _codes(
        {**base, "type": "product_view", "product_id": "p", "occurred_at": "2026-11-01T12:00:00"}
    ) == [("naive_timestamp", "occurred_at")]
    assert _codes({**base, "type": "product_view", "product_id": ""}) == [
        ("empty_value", "product_id")
    ]
    assert _codes({**base, "type": "add_to_cart", "product_id": "p", "unit_price": -2}) == [
        ("negative_price", "unit_price")
    ]


def test_revenue_and_clock_checks() -> None:
    purchase = parse_event(
        {
            "type": "purchase",
            "event_id": "e",
            "occurred_at": (NOW + timedelta(minutes=4)).isoformat(),
            "anonymous_id": "a",
            "order_id": "o",
            "currency": "GBP",
            "revenue": 30.2,
            "lines": [{"product_id": "p", "quantity": 3, "unit_price": 10.0}],
        }
    )
    assert semantic_problems(purchase, NOW, SemanticRules()) == []
    strict = SemanticRules(future_tolerance=timedelta(minutes=1), revenue_tolerance=0.001)
    assert [p.code for p in semantic_problems(purchase, NOW, strict)] == [
        "future_timestamp",
        "revenue_mismatch",
    ]
