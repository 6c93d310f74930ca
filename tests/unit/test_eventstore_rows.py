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


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_tuples_match_interaction_rows(event_type: str) -> None:
    e = parse_event(VALID[event_type])
    expected = [tuple(r[c] for c in _ITEM_COLS) for r in interaction_rows(e)]
    assert _item_tuples(e, e.occurred_at) == expected


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_rows_written_before_0014_with_the_whole_event_read_back_the_same(
    event_type: str,
) -> None:
    e = parse_event(VALID[event_type])
    row = {c: getattr(e, c, None) for c in COLUMN_FIELDS}
    row["payload"] = e.model_dump(mode="json", exclude_none=True)
    assert stored_event(row) == e
