"""The fast tuple rows of the event store equal the documented dict rows."""

from __future__ import annotations

import pytest

from shelfwise.contracts import EVENT_TYPES, parse_event
from shelfwise.contracts.eventstore import (
    _ITEM_COLS,
    COLUMN_FIELDS,
    _item_tuples,
    interaction_rows,
    stored_event,
)
from shelfwise.contracts.schemas import VALID


def test_one_interaction_row_per_product_line_with_its_values() -> None:
    buy = {**VALID["purchase"], "lines": [
        {"product_id": "P1", "quantity": 2, "unit_price": 59.0, "rec_id": "r-1"},
        {"product_id": "P2", "quantity": 1, "unit_price": 10.0},
    ], "revenue": 128.0}  # fmt: skip
    e = parse_event(buy)
    assert _item_tuples(e, "AT") == [
        ("e-1", 0, "purchase", "AT", "anon-1", "c-7", "s-1", "P1", 2, 59.0, None, None, "r-1"),
        ("e-1", 1, "purchase", "AT", "anon-1", "c-7", "s-1", "P2", 1, 10.0, None, None, None),
    ]
    shown = parse_event(VALID["rec_impression"])
    assert [(r["line"], r["product_id"], r["position"], r["placement"], r["rec_id"])
            for r in interaction_rows(shown)] == [
        (0, "P2", 1, "product-page", "r-9"), (1, "P3", 2, "product-page", "r-9"),
    ]  # fmt: skip
    assert set(interaction_rows(shown)[0]) == set(_ITEM_COLS)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_tuples_match_interaction_rows(event_type: str) -> None:
    e = parse_event(VALID[event_type])
    expected = [tuple(r[c] for c in _ITEM_COLS) for r in interaction_rows(e)]
    assert _item_tuples(e, e.occurred_at) == expected
    kinds_without_products = {"page_view", "login"}
    assert (len(expected) == 0) == (event_type in kinds_without_products)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_rows_written_before_0014_with_the_whole_event_read_back_the_same(
    event_type: str,
) -> None:
    e = parse_event(VALID[event_type])
    row = {c: getattr(e, c, None) for c in COLUMN_FIELDS}
    row["payload"] = e.model_dump(mode="json", exclude_none=True)
    assert stored_event(row) == e
