"""A product's catalog life rebuilt from the change log answers like the log's history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from shelfwise.contracts.reconcile import rebuild_listing

T0 = datetime(2026, 1, 1, tzinfo=UTC)
States = st.tuples(st.booleans(), st.sampled_from(["in_stock", "out_of_stock", "discontinued"]))


def _live(state: tuple[bool, str]) -> bool:
    return state[0] and state[1] != "discontinued"


@given(
    first=States,
    later=st.lists(st.tuples(st.integers(1, 1_000), States, st.booleans()), max_size=12),
)
def test_state_at_any_time_is_the_logged_state(
    first: tuple[bool, str], later: list[tuple[int, tuple[bool, str], bool]]
) -> None:
    # The log as the catalog repository writes it: creation, then [old, new] per field
    # that changed (a price change touches neither field the listing follows).
    log: list[tuple[datetime, dict[str, Any]]] = [(T0, {"created": True})]
    history = [(T0, first)]
    at, state = T0, first
    for minutes, new, price_too in later:
        at += timedelta(minutes=minutes)
        diff: dict[str, Any] = {}
        if new[0] != state[0]:
            diff["active"] = [state[0], new[0]]
        if new[1] != state[1]:
            diff["availability"] = [state[1], new[1]]
        if price_too or not diff:
            diff["price"] = [1.0, 2.0]
        log.append((at, diff))
        history.append((at, new))
        state = new
    listing = rebuild_listing(state[0], state[1], T0, log[::-1])
    assert listing.since == T0
    end = at + timedelta(days=1)
    probes = [t + d for t, _ in history for d in (timedelta(0), timedelta(seconds=30))]
    for t in probes:
        truth = [s for when, s in history if when <= t][-1]
        assert listing.state_at(t, end) == ("joined" if _live(truth) else "retired"), t
    before = T0 - timedelta(days=1)
    assert listing.state_at(before, before) == "not_yet_listed"
    assert listing.state_at(before, end) == ("joined" if _live(first) else "retired")
