"""Tiny interaction logs whose right answers are written out in the tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shelfwise.candidates.log import InteractionLog, Row

T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)


def purchases(
    baskets: list[tuple[str, str, list[str]]], days: list[int] | None = None
) -> InteractionLog:
    """``(basket id, person, items)`` triples, one purchase row per item."""
    days = days or [0] * len(baskets)
    rows = [
        Row(person=person, item=item, kind="purchase", at=T0 + timedelta(days=d), basket=basket)
        for (basket, person, items), d in zip(baskets, days, strict=True)
        for item in items
    ]
    return InteractionLog.from_rows(rows, items=("A", "B", "C", "D", "E"))


# A is bought with B twice and with C once; D goes with E.
ABC = [
    ("o1", "p1", ["A", "B"]),
    ("o2", "p2", ["A", "B"]),
    ("o3", "p3", ["A", "C"]),
    ("o4", "p4", ["D", "E"]),
]
