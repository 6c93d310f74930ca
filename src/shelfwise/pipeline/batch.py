"""Batch slates (email): the same pipeline, rules and traces, for many people at once.

A segment names who gets a slate: ``active:DAYS`` (any interaction in the last
DAYS), ``buyers:DAYS`` (a purchase in the last DAYS) or ``file:PATH`` (one
person id per line). Each person's recent interactions stand in for the live
session, so "because you viewed" works in email too.

**On every core.** Each person's slate is independent of the others', so a
batch runs in ``jobs`` forked worker processes (``ranking.workers``: 0, one per
core), :data:`CHUNK` people at a time, the slates coming back in the segment's
order. The first chunk is computed here, so the workers start from a warm
process (the ranker loaded, the shared memos filled) and share its memory. A
worker writes nothing: it holds its decisions (:class:`HeldDecisions`) and this
process's decision log records them as the slates come back; the log's writer
is paused while the workers fork (a child must not inherit a driver lock the
writer holds). A worker opens its own store connections (the change clock's
and the pool's are this process's) and draws its own slate ids (a forked copy
of the id generator would repeat this process's).
The slates are the same for any number of jobs (exploration draws are seeded by
each slate's own id, as for any two runs).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import orjson
from sqlalchemy import func, select

from shelfwise.errors import InvalidInput
from shelfwise.pipeline.recommender import RecIds, Recommender
from shelfwise.pipeline.request import RecommendRequest
from shelfwise.ranking.workers import forked_map, workers_for
from shelfwise.serving.decisions import Decision, DecisionLog, HeldDecisions
from shelfwise.serving.session import SESSION_TYPES, SessionRecord
from shelfwise.store.engine import Database
from shelfwise.store.tables import interactions

HISTORY_DAYS = 90
_CHUNK = 900  # people per history query
CHUNK = 250  # people a batch worker computes at a time
ROUND = 4  # chunks per worker between two reports of progress

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
    jobs: int = 1,
) -> Iterator[dict[str, Any]]:
    """Each person's slate, in order; in up to ``jobs`` worker processes (0: one per
    core) when there is more than a chunk of people."""
    people = list(people)
    recommender.placements.get(placement)
    history = histories(db, people, now, recommender.settings.session_max_events)

    def slate(who: str) -> dict[str, Any]:
        req = RecommendRequest(placement=placement, person=who, k=k, explain=explain)
        return {"person": who, **recommender.recommend(req, now, records=history.get(who, []))}

    chunks = [people[i : i + CHUNK] for i in range(0, len(people), CHUNK)]
    workers = workers_for(jobs, len(chunks) - 1)
    done = 0
    for n, part in enumerate(chunks):
        if workers and n > 0:  # the rest on the workers, chunk by chunk
            break
        for who in part:
            yield slate(who)
            done += 1
            if on_progress is not None and done % 100 == 0:
                on_progress(100)
    if not workers:
        return
    log = recommender.decisions
    if not isinstance(log, DecisionLog):  # pragma: no cover - a worker never forks again
        raise RuntimeError("a batch worker cannot start workers of its own")
    rest = chunks[1:]
    step = workers * ROUND
    for start in range(0, len(rest), step):
        with log.paused():
            got = forked_map(
                lambda part: _in_worker(recommender, db, log, slate, part),
                rest[start : start + step],
                jobs,
            )
        for slates, held in got:
            for decision, items_json in held:
                log.record(decision, items_json)
            yield from slates
            if on_progress is not None:
                on_progress(len(slates))


def _in_worker(
    recommender: Recommender,
    db: Database,
    log: DecisionLog,
    slate: Callable[[str], dict[str, Any]],
    part: Sequence[str],
) -> tuple[list[dict[str, Any]], list[tuple[Decision, bytes | None]]]:
    """A chunk's slates in a forked worker, and the decisions it held for the parent."""
    held = recommender.decisions
    if not isinstance(held, HeldDecisions):  # the worker's first chunk
        held = recommender.decisions = HeldDecisions(log)
        recommender.rec_ids = RecIds()  # its own process tag: ids unique across workers
        recommender.clock.forked()  # its own connections, never the parent's
        db.engine.dispose(close=False)
    return [slate(who) for who in part], held.take()


def write_jsonl(slates: Iterable[dict[str, Any]], out: IO[bytes]) -> int:
    n = 0
    for slate in slates:
        out.write(orjson.dumps(slate) + b"\n")
        n += 1
    return n
