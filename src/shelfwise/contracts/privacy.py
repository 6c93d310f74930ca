"""Erasing a person: every id linked to them, their events, links, slates and sessions.

``erase`` first resolves the id through the identity graph to the whole
profile (anonymous ids, devices, customer accounts), then deletes in one
transaction:

* ``events`` carrying any of those ids, their ``interactions`` rows (what
  training reads, so the next bundle no longer knows the person) and their
  ``duplicate_events`` counters;
* ``identity_links`` and ``identity_findings`` touching any node of the profile;
* ``decisions`` served to any of the ids or in any of the person's sessions;
* ``quarantine`` rows whose raw payload carries one of the ids or sessions;

and appends one row to ``erasures``: who, when, how many rows per table, an
opaque erasure id and, when ``privacy_salt`` is set, an HMAC of the id as
asked (so a later "was X erased?" can be answered) — never a raw id. After
the commit the person's live sessions are cleared and the graph rebuilt.

A bare id (no ``kind:`` prefix) is taken as every kind at once — customer,
anonymous and device id with that value — because the caller did not say
which; ``customer:42`` erases only that customer's profile.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import ColumnElement, Connection, delete, insert, or_, select

from shelfwise.contracts.identity import KINDS, IdentityGraph, node
from shelfwise.errors import NotFound
from shelfwise.store.engine import Database
from shelfwise.store.tables import (
    decisions,
    duplicate_events,
    erasures,
    events,
    identity_findings,
    identity_links,
    interactions,
    quarantine,
)
from shelfwise.store.types import utcnow

_CHUNK = 400  # ids per IN list: several lists share SQLite's 999 bound parameters

# What a quarantined payload may carry, by identity kind (raw events as sent).
_PAYLOAD_FIELDS = {"anonymous": "anonymous_id", "customer": "customer_id", "device": "device_id"}


class Erasure(BaseModel):
    """What an erasure did; ``counts`` are rows deleted per table. No personal id."""

    model_config = ConfigDict(frozen=True)

    erasure_id: str
    at: datetime
    who: str
    ids: int
    counts: dict[str, int]
    subject_hash: str | None


def subject_hash(any_id: str, salt: str | None) -> str | None:
    """HMAC-SHA256 of the id as asked, keyed by the installation's salt (None without one)."""
    if salt is None:
        return None
    return hmac.new(salt.encode(), any_id.encode(), hashlib.sha256).hexdigest()


def _chunks(values: Iterable[str]) -> Iterator[list[str]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]


def _by_kind(nodes: Iterable[str]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {k: set() for k in KINDS}
    for n in nodes:
        kind, _, value = n.partition(":")
        if kind in out:
            out[kind].add(value)
    return out


def start_nodes(any_id: str) -> list[str]:
    """The graph nodes an id names: itself with a known ``kind:`` prefix, else every kind."""
    kind, sep, value = any_id.partition(":")
    if sep and kind in KINDS and value:
        return [any_id]
    return [node(k, any_id) for k in KINDS]


class Eraser:
    """Erases people from the store; ``clear_session`` drops a live session (all workers
    with Redis, this worker otherwise)."""

    def __init__(
        self,
        db: Database,
        identity: IdentityGraph,
        *,
        clear_session: Callable[[str], None] | None = None,
        before: Callable[[], object] | None = None,
        salt: str | None = None,
    ) -> None:
        self.db = db
        self.identity = identity
        self.clear_session = clear_session
        self.before = before  # e.g. write the decision log's queue first
        self.salt = salt

    def erase(self, any_id: str, *, who: str) -> Erasure:
        """Erase the person behind ``any_id``; NotFound (``person_not_found``) when no
        table knows any of their ids."""
        if self.before is not None:
            self.before()
        start = start_nodes(any_id)
        linked = self.identity.profile_of(start)
        nodes = sorted({*linked, *start})
        kinds = _by_kind(nodes)
        values = set().union(*kinds.values())
        with self.db.engine.begin() as conn:
            event_ids, sessions, seen = self._events_of(conn, kinds)
            counts = {
                "events": self._delete_in(conn, events.c.event_id, event_ids),
                "interactions": self._delete_in(conn, interactions.c.event_id, event_ids),
                "duplicate_events": self._delete_in(conn, duplicate_events.c.event_id, event_ids),
                "identity_links": self._delete_links(conn, identity_links, nodes),
                "identity_findings": self._delete_links(conn, identity_findings, nodes),
                "decisions": self._delete_in(conn, decisions.c.person_id, values | set(nodes))
                + self._delete_in(conn, decisions.c.session_id, sessions),
                "quarantine": self._delete_quarantined(conn, kinds, sessions),
            }
            if not any(counts.values()):
                raise NotFound(f"no data about {any_id!r}", code="person_not_found")
            counts["sessions"] = len(sessions)
            erasure = Erasure(
                erasure_id=uuid.uuid4().hex,
                at=utcnow(),
                who=who,
                ids=len({*linked, *seen}),
                counts=counts,
                subject_hash=subject_hash(any_id, self.salt),
            )
            conn.execute(
                insert(erasures).values(
                    erasure_id=erasure.erasure_id,
                    at=erasure.at,
                    who=who,
                    subject_hash=erasure.subject_hash,
                    ids=erasure.ids,
                    counts=counts,
                )
            )
        if self.clear_session is not None:
            for sid in sorted(sessions):
                self.clear_session(sid)
        self.identity.forget()
        return erasure

    def audit(self, limit: int = 100) -> list[Erasure]:
        """The latest erasures, newest first."""
        with self.db.engine.connect() as conn:
            rows = conn.execute(select(erasures).order_by(erasures.c.seq.desc()).limit(limit))
            return [Erasure.model_validate(dict(r._mapping)) for r in rows]

    # -- the parts ----------------------------------------------------------

    @staticmethod
    def _events_of(
        conn: Connection, kinds: dict[str, set[str]]
    ) -> tuple[set[str], set[str], set[str]]:
        """The ids of the person's events, the sessions they happened in and the
        person's nodes those events carry."""
        columns = {
            "anonymous": events.c.anonymous_id,
            "customer": events.c.customer_id,
            "device": events.c.device_id,
        }
        event_ids: set[str] = set()
        sessions: set[str] = set()
        seen: set[str] = set()
        for kind, column in columns.items():
            for chunk in _chunks(kinds[kind]):
                rows = conn.execute(
                    select(events.c.event_id, events.c.session_id, column).where(column.in_(chunk))
                )
                for event_id, session_id, value in rows:
                    event_ids.add(event_id)
                    seen.add(node(kind, value))
                    if session_id:
                        sessions.add(session_id)
        return event_ids, sessions, seen

    @staticmethod
    def _delete_in(conn: Connection, column: Any, values: Iterable[str]) -> int:
        table = column.table
        return sum(
            int(conn.execute(delete(table).where(column.in_(chunk))).rowcount)
            for chunk in _chunks(values)
        )

    @staticmethod
    def _delete_links(conn: Connection, table: Any, nodes: Sequence[str]) -> int:
        return sum(
            int(
                conn.execute(
                    delete(table).where(or_(table.c.a.in_(chunk), table.c.b.in_(chunk)))
                ).rowcount
            )
            for chunk in _chunks(nodes)
        )

    @staticmethod
    def _delete_quarantined(
        conn: Connection, kinds: dict[str, set[str]], sessions: set[str]
    ) -> int:
        payload = quarantine.c.payload
        fields = [(_PAYLOAD_FIELDS[k], v) for k, v in kinds.items()]
        fields.append(("session_id", sessions))
        deleted = 0
        for name, values in fields:
            for chunk in _chunks(values):
                match: ColumnElement[bool] = payload[name].as_string().in_(chunk)
                deleted += int(conn.execute(delete(quarantine).where(match)).rowcount)
        return deleted
