"""The email batch's stand-in for a live session, read from the store in one query per
chunk of people: each person's newest session-type events of the last 90 days, oldest
first, the same as reading every row and keeping the last ones in Python."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from shelfwise.pipeline import batch
from shelfwise.pipeline.batch import HISTORY_DAYS, histories, person
from shelfwise.runtime import Runtime
from shelfwise.serving.session import SESSION_TYPES
from shelfwise.store.tables import interactions
from tests import shop_fixture

# The fixture's events run from 2024-01-01 for 60 days: at this clock the first two
# weeks are older than the 90-day window.
NOW = datetime(2024, 4, 15, tzinfo=UTC)


def _reference(
    rt: Runtime, people: list[str], keep: int
) -> dict[str, list[tuple[str, str, float]]]:
    c = interactions.c
    since = NOW - timedelta(days=HISTORY_DAYS)
    rows = select(person, c.product_id, c.type, c.occurred_at, c.event_id, c.line)
    with rt.db.engine.connect() as conn:
        got = [r for r in conn.execute(rows) if r[0] in people]
    out: dict[str, list[tuple[str, str, float]]] = {}
    for who, pid, kind, at, _, _ in sorted(got, key=lambda r: (r[3], r[4], r[5])):
        if kind in SESSION_TYPES and at >= since:
            out.setdefault(who, []).append((pid, kind, at.timestamp()))
    return {who: records[-keep:] for who, records in out.items()}


@pytest.mark.parametrize("chunk", [7, 30_000])
def test_histories_keep_each_person_s_newest_events_oldest_first(
    runtime: Runtime, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop_fixture.fill(runtime)
    monkeypatch.setattr(batch, "_CHUNK", chunk)  # several queries, or one
    people = [f"c{i}" for i in range(48)] + ["nobody"]
    got = histories(runtime.db, people, NOW, keep=3)
    want = _reference(runtime, people, keep=3)
    assert {
        who: [(r.product_id, r.type, r.at) for r in records] for who, records in got.items()
    } == want
    assert "nobody" not in got and len(got) == 48
    assert all(len(records) == 3 for records in got.values())  # everyone has more
    oldest = min(r.at for records in got.values() for r in records)
    assert oldest >= (NOW - timedelta(days=HISTORY_DAYS)).timestamp()
