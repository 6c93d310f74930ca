"""The quarantine: every rejected event, its raw payload and its reasons.

A bad event sent twice is one row seen twice (rows are keyed by a fingerprint
of the canonical payload). ``replay`` re-validates open rows after a fix — a
product added to the catalog, a schema bug fixed — and moves the ones that now
pass into the event store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from shelfwise.contracts.checks import Problem, json_safe
from shelfwise.contracts.events import Event
from shelfwise.store.engine import Database
from shelfwise.store.tables import duplicate_events, quarantine
from shelfwise.store.types import utcnow
from shelfwise.values import is_clean_id

OPEN = "open"
REPLAYED = "replayed"
# Sources ending so hold data-set rows an importer refused (not events): never replayed.
ROWS_SUFFIX = ":rows"


@dataclass(frozen=True)
class Rejection:
    """A raw payload the ingestion refused, with why."""

    raw: Any
    problems: tuple[Problem, ...]
    event_id: str | None = None
    type: str | None = None


def fingerprint(raw: Any) -> str:
    data = orjson.dumps(json_safe(raw), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class QuarantinedEvent:
    id: int
    source: str
    event_id: str | None
    type: str | None
    reasons: list[dict[str, str]]
    payload: Any
    status: str
    seen_count: int
    first_seen_at: datetime
    last_seen_at: datetime
    replayed_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Quarantine:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add_in(self, conn: Connection, items: Sequence[Rejection], source: str) -> None:
        if not items:
            return
        now = utcnow()
        rows: dict[str, dict[str, Any]] = {}
        for r in items:
            fp = fingerprint(r.raw)
            if fp in rows:
                rows[fp]["seen_count"] += 1
                continue
            rows[fp] = {
                "fingerprint": fp,
                "source": source,
                # Columns hold only what every store can: no NUL, no lone surrogate.
                "event_id": r.event_id if is_clean_id(r.event_id) else None,
                "type": r.type if is_clean_id(r.type) and len(r.type or "") <= 32 else None,
                "reasons": [p.as_dict() for p in r.problems],
                "payload": json_safe(r.raw),
                "status": OPEN,
                "seen_count": 1,
                "first_seen_at": now,
                "last_seen_at": now,
                "replayed_at": None,
            }
        dialect = postgresql if self.db.backend == "postgresql" else sqlite
        stmt = dialect.insert(quarantine)
        stmt = stmt.on_conflict_do_update(
            index_elements=[quarantine.c.fingerprint],
            set_={
                "seen_count": quarantine.c.seen_count + stmt.excluded.seen_count,
                "last_seen_at": stmt.excluded.last_seen_at,
                "reasons": stmt.excluded.reasons,
                "status": OPEN,
            },
        )
        conn.execute(stmt, list(rows.values()))

    def count_duplicates_in(self, conn: Connection, batch: Sequence[Event]) -> None:
        """Record events received again after they were stored (for the duplicate rate)."""
        if not batch:
            return
        now = utcnow()
        rows: dict[str, dict[str, Any]] = {}
        for e in batch:
            row = rows.get(e.event_id)
            if row is not None:
                row["seen_count"] += 1
                continue
            rows[e.event_id] = {
                "event_id": e.event_id,
                "type": e.type,
                "platform": e.platform,
                "browser": e.browser,
                "app_version": e.app_version,
                "seen_count": 1,
                "last_seen_at": now,
            }
        dialect = postgresql if self.db.backend == "postgresql" else sqlite
        stmt = dialect.insert(duplicate_events)
        stmt = stmt.on_conflict_do_update(
            index_elements=[duplicate_events.c.event_id],
            set_={
                "seen_count": duplicate_events.c.seen_count + stmt.excluded.seen_count,
                "last_seen_at": stmt.excluded.last_seen_at,
            },
        )
        conn.execute(stmt, list(rows.values()))

    def entries(
        self, status: str | None = OPEN, limit: int = 100, offset: int = 0
    ) -> list[QuarantinedEvent]:
        query = select(quarantine).order_by(quarantine.c.id).offset(offset).limit(limit)
        if status is not None:
            query = query.where(quarantine.c.status == status)
        with self.db.engine.connect() as conn:
            return [_entry(r) for r in conn.execute(query)]

    def open_ids(self, limit: int | None = None) -> list[int]:
        """Open rows that hold events (replayable), oldest first."""
        query = (
            select(quarantine.c.id)
            .where(quarantine.c.status == OPEN, ~quarantine.c.source.endswith(ROWS_SUFFIX))
            .order_by(quarantine.c.id)
        )
        if limit is not None:
            query = query.limit(limit)
        with self.db.engine.connect() as conn:
            return [int(i) for i in conn.execute(query).scalars()]

    def get_many_in(self, conn: Connection, ids: Sequence[int]) -> list[QuarantinedEvent]:
        rows = conn.execute(
            select(quarantine).where(quarantine.c.id.in_(list(ids))).order_by(quarantine.c.id)
        )
        return [_entry(r) for r in rows]

    def mark_replayed_in(self, conn: Connection, ids: Sequence[int]) -> None:
        if ids:
            conn.execute(
                update(quarantine)
                .where(quarantine.c.id.in_(list(ids)))
                .values(status=REPLAYED, replayed_at=utcnow())
            )

    def update_reasons_in(
        self, conn: Connection, entry_id: int, problems: Sequence[Problem]
    ) -> None:
        conn.execute(
            update(quarantine)
            .where(quarantine.c.id == entry_id)
            .values(reasons=[p.as_dict() for p in problems])
        )

    def counts(self) -> dict[str, int]:
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                select(quarantine.c.status, func.count()).group_by(quarantine.c.status)
            ).all()
        return {str(s): int(n) for s, n in rows}

    def reason_counts(self) -> dict[str, int]:
        """Open rows per (code, field): the schema-violation census."""
        out: dict[str, int] = {}
        with self.db.engine.connect() as conn:
            for reasons, seen in conn.execute(
                select(quarantine.c.reasons, quarantine.c.seen_count)
            ):
                for p in reasons:
                    key = f"{p['code']}:{p['field']}"
                    out[key] = out.get(key, 0) + int(seen)
        return out


def _entry(row: Any) -> QuarantinedEvent:
    m = row._mapping
    return QuarantinedEvent(
        id=int(m["id"]),
        source=m["source"],
        event_id=m["event_id"],
        type=m["type"],
        reasons=list(m["reasons"]),
        payload=m["payload"],
        status=m["status"],
        seen_count=int(m["seen_count"]),
        first_seen_at=m["first_seen_at"],
        last_seen_at=m["last_seen_at"],
        replayed_at=m["replayed_at"],
    )
