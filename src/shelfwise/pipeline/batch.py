"""Batch slates (email): the same pipeline, rules and traces, for many people at once.

A segment names who gets a slate: ``active:DAYS`` (any interaction in the last
DAYS), ``buyers:DAYS`` (a purchase in the last DAYS) or ``file:PATH`` (one
person id per line). Each person's recent interactions stand in for the live
session, so "because you viewed" works in email too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import orjson
from sqlalchemy import func, select

from shelfwise.errors import InvalidInput
from shelfwise.pipeline.recommender import Recommender
from shelfwise.pipeline.request import RecommendRequest
from shelfwise.serving.session import SESSION_TYPES, SessionRecord
from shelfwise.store.engine import Database
from shelfwise.store.tables import interactions

HISTORY_DAYS = 90
_CHUNK = 900

person = func.coalesce(interactions.c.customer_id, interactions.c.anonymous_id)


def segment_people(db: Database, segment: str, now: datetime) -> list[str]:
    kind, _, arg = segment.partition(":")
    if kind == "file":
        path = Path(arg)
        if not path.is_file():
            raise InvalidInput(f"segment file {path} does not exist", code="segment_invalid")
        return list(
            dict.fromkeys(line.strip() for line in path.read_text().splitlines() if line.strip())
        )
    if kind not in ("active", "buyers") or not arg.isdigit():
        raise InvalidInput(
            f"unknown segment {segment!r}: use active:DAYS, buyers:DAYS or file:PATH",
            code="segment_invalid",
        )
    query = select(person).where(interactions.c.occurred_at >= now - timedelta(days=int(arg)))
    if kind == "buyers":
        query = query.where(interactions.c.type == "purchase")
    with db.engine.connect() as conn:
        return sorted({str(p) for p in conn.execute(query.distinct()).scalars()})


def histories(
    db: Database, people: list[str], now: datetime, keep: int
) -> dict[str, list[SessionRecord]]:
    """Each person's most recent session-type interactions, oldest first."""
    out: dict[str, list[SessionRecord]] = {}
    since = now - timedelta(days=HISTORY_DAYS)
    with db.engine.connect() as conn:
        for start in range(0, len(people), _CHUNK):
            chunk = people[start : start + _CHUNK]
            rows = conn.execute(
                select(
                    person,
                    interactions.c.product_id,
                    interactions.c.type,
                    interactions.c.occurred_at,
                )
                .where(
                    person.in_(chunk),
                    interactions.c.occurred_at >= since,
                    interactions.c.type.in_(sorted(SESSION_TYPES)),
                )
                .order_by(interactions.c.occurred_at)
            )
            for who, pid, kind, at in rows:
                out.setdefault(str(who), []).append(SessionRecord(pid, kind, at.timestamp()))
    return {p: r[-keep:] for p, r in out.items()}


def email_slates(
    recommender: Recommender,
    db: Database,
    people: Iterable[str],
    now: datetime,
    placement: str = "email",
    k: int | None = None,
    explain: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[dict[str, Any]]:
    people = list(people)
    recommender.placements.get(placement)
    history = histories(db, people, now, recommender.settings.session_max_events)
    for n, who in enumerate(people, start=1):
        req = RecommendRequest(placement=placement, person=who, k=k, explain=explain)
        slate = recommender.recommend(req, now, records=history.get(who, []))
        yield {"person": who, **slate}
        if on_progress is not None and n % 100 == 0:
            on_progress(100)


def write_jsonl(slates: Iterable[dict[str, Any]], out: IO[bytes]) -> int:
    n = 0
    for slate in slates:
        out.write(orjson.dumps(slate) + b"\n")
        n += 1
    return n
