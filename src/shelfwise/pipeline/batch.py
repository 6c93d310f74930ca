"""Batch slates (email): the same pipeline, rules and traces, for many people at once.

A segment names who gets a slate: ``active:DAYS`` (any interaction in the last
DAYS), ``buyers:DAYS`` (a purchase in the last DAYS) or ``file:PATH`` (one
person id per line). Each person's recent interactions stand in for the live
session, so "because you viewed" works in email too.

**On every core.** Each person's slate is independent of the others', so a
batch runs in ``jobs`` forked worker processes (``ranking.workers``: 0, one per
core, forked once), :data:`CHUNK` people at a time, the slates coming back in
the segment's order while the workers go on. The first chunk is computed here,
so the workers start from a warm process (the ranker loaded, the shared memos
filled) and share its memory. A
worker writes nothing: it encodes its slates' JSON lines and their decision-log
rows (:class:`HeldDecisions`), and this process writes the lines and queues the
rows as they come back, decoding nothing. The log's writer is paused while the
workers fork (a child must not inherit a driver lock the writer holds); a
worker opens its own store connections (the change clock's and the pool's are
this process's) and draws its own slate ids (a forked copy of the id generator
would repeat this process's). The slates are the same for any number of jobs
(exploration draws are seeded by each slate's own id, as for any two runs).
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
from shelfwise.ranking.workers import forked_imap, workers_for
from shelfwise.serving.decisions import DecisionLog, HeldDecisions
from shelfwise.serving.session import SESSION_TYPES, SessionRecord
from shelfwise.store.engine import Database
from shelfwise.store.tables import interactions

HISTORY_DAYS = 90
_CHUNK = 30_000  # people per history query (SQLite binds at most 32,766 values)
CHUNK = 250  # people a batch worker computes at a time

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
    """Each person's ``keep`` most recent session-type interactions, oldest first: one
    scan of the window per :data:`_CHUNK` people, the store keeping each person's
    newest rows itself (a window function), so only those come back."""
    out: dict[str, list[SessionRecord]] = {}
    since = now - timedelta(days=HISTORY_DAYS)
    c = interactions.c
    newest = func.row_number().over(
        partition_by=person, order_by=(c.occurred_at.desc(), c.event_id.desc(), c.line.desc())
    )
    with db.engine.connect() as conn:
        for start in range(0, len(people), _CHUNK):
            rows = (
                select(
                    person.label("who"),
                    c.product_id,
                    c.type,
                    c.occurred_at,
                    c.event_id,
                    c.line,
                    newest.label("newest"),
                )
                .where(
                    person.in_(people[start : start + _CHUNK]),
                    c.occurred_at >= since,
                    c.type.in_(sorted(SESSION_TYPES)),
                )
                .subquery()
            )
            kept = (
                select(rows.c.who, rows.c.product_id, rows.c.type, rows.c.occurred_at)
                .where(rows.c.newest <= keep)
                .order_by(rows.c.occurred_at, rows.c.event_id, rows.c.line)
            )
            for who, pid, kind, at in conn.execute(kept):
                out.setdefault(str(who), []).append(SessionRecord(pid, kind, at.timestamp()))
    return out


def email_lines(
    recommender: Recommender,
    db: Database,
    people: Iterable[str],
    now: datetime,
    placement: str = "email",
    k: int | None = None,
    explain: bool = False,
    on_progress: Callable[[int], None] | None = None,
    jobs: int = 1,
) -> Iterator[bytes]:
    """Each person's slate as a JSON line (without its newline), in order; in up to
    ``jobs`` worker processes (0: one per core) when there is more than a chunk of
    people (the workers encode the lines and the decision rows)."""
    people = list(people)
    recommender.placements.get(placement)
    history = histories(db, people, now, recommender.settings.session_max_events)

    def lines(part: Sequence[str]) -> list[bytes]:
        reqs = [
            RecommendRequest(placement=placement, person=who, k=k, explain=explain) for who in part
        ]
        slates = recommender.recommend_many(reqs, now, [history.get(who, []) for who in part])
        return [
            orjson.dumps({"person": who, **slate}) for who, slate in zip(part, slates, strict=True)
        ]

    chunks = [people[i : i + CHUNK] for i in range(0, len(people), CHUNK)]
    workers = workers_for(jobs, len(chunks) - 1)
    for part in chunks[:1] if workers else chunks:  # here
        yield from lines(part)
        if on_progress is not None:
            on_progress(len(part))
    if not workers:
        return
    log = recommender.decisions
    if not isinstance(log, DecisionLog):  # pragma: no cover - a worker never forks again
        raise RuntimeError("a batch worker cannot start workers of its own")
    parts = forked_imap(
        lambda part: _in_worker(recommender, db, log, lines, part), chunks[1:], jobs, log.paused
    )
    for got, rows in parts:
        for rec_id, row in rows:
            log.record_row(rec_id, row)
        yield from got
        if on_progress is not None:
            on_progress(len(got))


def _in_worker(
    recommender: Recommender,
    db: Database,
    log: DecisionLog,
    lines: Callable[[Sequence[str]], list[bytes]],
    part: Sequence[str],
) -> tuple[list[bytes], list[tuple[str, tuple[Any, ...]]]]:
    """A chunk's lines in a forked worker, and the decision rows it held for the parent."""
    held = recommender.decisions
    if not isinstance(held, HeldDecisions):  # the worker's first chunk
        held = recommender.decisions = HeldDecisions(log)
        recommender.rec_ids = RecIds()  # its own process tag: ids unique across workers
        recommender.clock.forked()  # its own connections, never the parent's
        db.engine.dispose(close=False)
    return lines(part), held.take()


def write_jsonl(lines: Iterable[bytes], out: IO[bytes]) -> int:
    """:func:`email_lines`' lines, one a line; how many."""
    n = 0
    for line in lines:
        out.write(line + b"\n")
        n += 1
    return n
