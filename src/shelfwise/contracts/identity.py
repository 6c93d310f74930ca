"""Identity stitching: one person behind anonymous ids, devices and customer accounts.

Nodes are ``kind:value`` strings (``anonymous:…``, ``device:…``, ``customer:…``).
Links come from events:

* an event with a ``device_id`` links its anonymous id to the device;
* a ``login`` or a ``purchase`` carrying a ``customer_id`` links the customer to
  its anonymous id and to every anonymous id seen in the same session.

Guards: placeholder values (``""``, ``null``, ``undefined``, ``0``,
``anonymous`` …) never link; a link that would grow a profile beyond
``identity_max_ids`` ids is refused and recorded as a finding (one shared
"guest" id on a kiosk must not merge a city's shoppers). Every link is a row
of the merge log and can be undone; an undone link is never re-created.

``resolve(any_id)`` returns the person id: the smallest customer node of the
profile if it has one, else its smallest node — stable as profiles grow.

Training and serving key people by :func:`person_of`: a linked id gives its
profile's person id as above, an id the graph never linked stays as given.
``shelfwise train`` takes a frozen :class:`PersonResolver` (``snapshot()``) when
it starts; the request path resolves by the same rule on the live graph through
:class:`shelfwise.serving.identity.PersonCache`, which follows the merge log.
So the person ids a bundle was trained on are the ones a request resolves to.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from shelfwise.contracts.events import Event
from shelfwise.errors import NotFound
from shelfwise.store.engine import Database
from shelfwise.store.tables import (
    erasures,
    events,
    identity_findings,
    identity_links,
    identity_unmerges,
)
from shelfwise.store.types import utcnow

PLACEHOLDERS = frozenset(
    {
        "",
        "null",
        "none",
        "nil",
        "undefined",
        "nan",
        "0",
        "-1",
        "anonymous",
        "guest",
        "unknown",
        "n/a",
        "na",
        "test",
        "default",
        "00000000-0000-0000-0000-000000000000",
    }
)
KINDS = ("customer", "anonymous", "device")
_CHUNK = 900  # sessions per IN list (below SQLite's bound-parameter limit)


def is_placeholder(value: str | None) -> bool:
    return value is None or value.strip().lower() in PLACEHOLDERS


def node(kind: str, value: str) -> str:
    return f"{kind}:{value}"


def person_of(any_id: str, person_at: Callable[[str], str | None]) -> str:
    """The person behind a bare id (tried as a customer, anonymous, then device id) or
    a ``kind:value`` node; an id the graph does not link stays as given."""
    head = any_id.split(":", 1)[0]
    nodes = [any_id] if head in KINDS else []
    nodes += [node(k, any_id) for k in KINDS]
    for n in nodes:
        person = person_at(n)
        if person is not None:
            return person
    return any_id


class IdentityVersion(NamedTuple):
    """The graph's version in the store: its newest merge-log row, its newest privacy
    erasure (an erasure deletes links without adding a row) and its newest unmerge (an
    unmerge marks a row undone without adding one). The request path reads it on every
    request with the catalog's change clock (``serving.freshness``)."""

    links: int  # max(identity_links.id)
    erasures: int  # max(erasures.seq)
    unmerges: int  # max(identity_unmerges.seq)

    @property
    def removals(self) -> tuple[int, int]:
        """What takes links away: an erasure or an unmerge (the links are read again)."""
        return self.erasures, self.unmerges


# The newest erasure and the newest unmerge, in one statement.
_REMOVALS = select(
    select(func.max(erasures.c.seq)).scalar_subquery(),
    select(func.max(identity_unmerges.c.seq)).scalar_subquery(),
)


@dataclass(frozen=True)
class PersonResolver:
    """A frozen view of the identity graph: ``resolver(any_id) -> person id``, no I/O.

    What ``shelfwise train`` resolves the people of its window with, so a link made
    while it runs cannot split one person's history across two ids."""

    persons: Mapping[str, str]  # node -> person id, for every linked node
    last_link: int  # the newest merge-log row applied

    def __call__(self, any_id: str) -> str:
        return person_of(any_id, self.persons.get)

    @property
    def people(self) -> int:
        """Linked profiles in the snapshot."""
        return len(set(self.persons.values()))


@dataclass(frozen=True)
class Link:
    a: str
    b: str
    reason: str
    event_id: str | None


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}
        self.members: dict[str, set[str]] = {}

    def find(self, x: str) -> str:
        parent = self.parent
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(x, x) != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    def size(self, x: str) -> int:
        return len(self.members.get(self.find(x), ())) or 1

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        ma = self.members.pop(ra, {ra})
        mb = self.members.pop(rb, {rb})
        if len(ma) < len(mb):
            ra, rb, ma, mb = rb, ra, mb, ma
        self.parent[rb] = ra
        self.parent.setdefault(ra, ra)
        ma |= mb
        self.members[ra] = ma

    def component(self, x: str) -> set[str]:
        return set(self.members.get(self.find(x), {x}))


class IdentityGraph:
    """The union-find over the merge log; an ingestion observer and the resolver."""

    def __init__(self, db: Database, max_ids: int = 50) -> None:
        self.db = db
        self.max_ids = max_ids
        self._lock = threading.Lock()
        self._uf = _UnionFind()
        self._known: set[tuple[str, str]] = set()
        self._seen_id = 0
        self._loaded = False
        self._removed = (0, 0)  # the newest erasure and unmerge the links in memory reflect

    # -- building ----------------------------------------------------------

    def _load(self, conn: Connection | None = None, force: bool = False) -> None:
        """Apply links added since the last look (other workers write too).

        Unforced, only an erasure or an unmerge (by any worker: each takes links out of
        the profiles) makes it read again, from scratch."""
        own = conn is None
        c = conn if conn is not None else self.db.engine.connect()
        try:
            erased, unmerged = c.execute(_REMOVALS).one()
            removed = (int(erased or 0), int(unmerged or 0))
            if removed != self._removed:
                self._uf, self._known, self._seen_id = _UnionFind(), set(), 0
                self._removed, force = removed, True
            if self._loaded and not force:
                return
            rows = c.execute(
                select(
                    identity_links.c.id,
                    identity_links.c.a,
                    identity_links.c.b,
                    identity_links.c.undone_at,
                )
                .where(identity_links.c.id > self._seen_id)
                .order_by(identity_links.c.id)
            ).all()
        finally:
            if own:
                c.close()
        for r in rows:
            self._known.add((r.a, r.b))
            if r.undone_at is None:
                self._uf.union(r.a, r.b)
            self._seen_id = max(self._seen_id, int(r.id))
        self._loaded = True

    def _rebuild(self) -> None:
        self._uf, self._known, self._seen_id, self._loaded = _UnionFind(), set(), 0, False
        self._load()

    def forget(self) -> None:
        """Drop what is in memory and re-read the merge log (after an erasure)."""
        with self._lock:
            self._rebuild()

    def links_of(self, conn: Connection, batch: Sequence[Event]) -> list[Link]:
        out: list[Link] = []
        sessions = self._session_anons(conn, batch)
        for e in batch:
            anon = None if is_placeholder(e.anonymous_id) else node("anonymous", e.anonymous_id)
            if anon and e.device_id and not is_placeholder(e.device_id):
                out.append(Link(node("device", e.device_id), anon, "device", e.event_id))
            if e.type not in ("login", "purchase") or is_placeholder(e.customer_id):
                continue
            assert e.customer_id is not None
            cust = node("customer", e.customer_id)
            anons = set(sessions.get(e.session_id, ())) if e.session_id else set()
            if anon:
                anons.add(e.anonymous_id)
            reason = e.type
            out.extend(
                Link(cust, node("anonymous", a), reason, e.event_id)
                for a in sorted(anons)
                if not is_placeholder(a)
            )
        return out

    @staticmethod
    def _session_anons(conn: Connection, batch: Sequence[Event]) -> dict[str, set[str]]:
        """The anonymous ids seen in the session of each identifying event (a login or a
        purchase with a customer id) of the batch, stored ones included: one query per
        chunk of sessions, not one per event."""
        wanted = sorted(
            {
                e.session_id
                for e in batch
                if e.session_id
                and e.type in ("login", "purchase")
                and not is_placeholder(e.customer_id)
            }
        )
        out: dict[str, set[str]] = {}
        for e in batch:
            if e.session_id and not is_placeholder(e.anonymous_id):
                out.setdefault(e.session_id, set()).add(e.anonymous_id)
        for start in range(0, len(wanted), _CHUNK):
            query = (
                select(events.c.session_id, events.c.anonymous_id)
                .where(events.c.session_id.in_(wanted[start : start + _CHUNK]))
                .distinct()
            )
            for sid, anon in conn.execute(query):
                out.setdefault(sid, set()).add(anon)
        return out

    def observe_in(self, conn: Connection, batch: Sequence[Event]) -> None:
        """Ingestion hook: add the links the fresh events imply."""
        if not any(e.device_id or e.customer_id for e in batch):
            return
        with self._lock:
            self._load(conn)
            self.link_in(conn, self.links_of(conn, batch))

    def link_in(self, conn: Connection, links: Iterable[Link]) -> int:
        now = utcnow()
        new: list[dict[str, object]] = []
        refused: list[dict[str, object]] = []
        for link in links:
            a, b = sorted((link.a, link.b))
            if a == b or (a, b) in self._known:
                continue
            if self._uf.find(a) != self._uf.find(b):  # a link already implied is kept as is
                size = self._uf.size(a) + self._uf.size(b)
                if size > self.max_ids:
                    refused.append(
                        {
                            "kind": "profile_too_large",
                            "a": a,
                            "b": b,
                            "size": size,
                            "event_id": link.event_id,
                            "created_at": now,
                        }
                    )
                    continue
                self._uf.union(a, b)
            self._known.add((a, b))
            new.append(
                {
                    "a": a,
                    "b": b,
                    "reason": link.reason,
                    "event_id": link.event_id,
                    "created_at": now,
                    "undone_at": None,
                }
            )
        dialect = postgresql if self.db.backend == "postgresql" else sqlite
        if new:
            conn.execute(dialect.insert(identity_links).on_conflict_do_nothing(), new)
        if refused:
            conn.execute(dialect.insert(identity_findings).on_conflict_do_nothing(), refused)
        return len(new)

    def link(self, a: str, b: str, reason: str = "manual") -> int:
        with self._lock, self.db.engine.begin() as conn:
            self._load(conn)
            return self.link_in(conn, [Link(a, b, reason, None)])

    # -- reading -----------------------------------------------------------

    def resolve(self, any_id: str, kind: str | None = None) -> str:
        """The person id behind ``any_id`` (a node ``kind:value`` or a bare value)."""
        with self._lock:
            self._load(force=True)
            candidates = (
                [any_id]
                if ":" in any_id and kind is None
                else [node(k, any_id) for k in ((kind,) if kind else KINDS)]
            )
            for c in candidates:
                if c in self._uf.parent:
                    return _person(self._uf.component(c))
            return candidates[0]

    def person(self, any_id: str, as_of: IdentityVersion | None = None) -> str:
        """The person behind a request's or an event's id, by the one rule everything
        keys people by (:func:`person_of`: training's frozen :meth:`snapshot` and the
        request path's ``serving.identity.PersonCache`` alike); unlinked: as given.

        Reads the store first (the newest erasure and unmerge, then the links it has not
        seen), unless ``as_of`` — the graph's version the caller just read from the
        store — says there is nothing to read: the links in memory already reflect that
        erasure and unmerge and include that merge-log row."""
        with self._lock:
            if as_of is None or not self._holds(as_of):
                self._load(force=True)
            return person_of(any_id, self._person_at)

    def _holds(self, version: IdentityVersion) -> bool:
        """Whether the links in memory are the store's at ``version``: loaded after that
        erasure and that unmerge (one newer or older than those loaded reads again), and
        up to at least that merge-log row."""
        return self._loaded and self._removed == version.removals and self._seen_id >= version.links

    def _person_at(self, n: str) -> str | None:
        return _person(self._uf.component(n)) if n in self._uf.parent else None

    def warm(self) -> None:
        """Read the merge log now (a big graph costs its first reader the load)."""
        with self._lock:
            self._load()

    def snapshot(self) -> PersonResolver:
        """The graph as it is now, frozen (see :class:`PersonResolver`)."""
        with self._lock:
            self._load(force=True)
            persons: dict[str, str] = {}
            for members in self._uf.members.values():
                who = _person(members)
                persons.update(dict.fromkeys(members, who))
            return PersonResolver(persons, self._seen_id)

    def profile(self, any_id: str) -> list[str]:
        with self._lock:
            self._load(force=True)
            return sorted(self._uf.component(self.resolve_node(any_id)))

    def profile_of(self, nodes: Iterable[str]) -> list[str]:
        """Every node of the profiles of ``nodes`` (those of ``nodes`` the graph knows)."""
        with self._lock:
            self._load(force=True)
            out: set[str] = set()
            for n in nodes:
                if n in self._uf.parent:
                    out |= self._uf.component(n)
            return sorted(out)

    def resolve_node(self, any_id: str) -> str:
        if ":" in any_id:
            return any_id
        return next(
            (node(k, any_id) for k in KINDS if node(k, any_id) in self._uf.parent),
            node("anonymous", any_id),
        )

    def merges(self, limit: int = 100) -> list[dict[str, object]]:
        with self.db.engine.connect() as conn:
            rows = conn.execute(
                select(identity_links).order_by(identity_links.c.id.desc()).limit(limit)
            )
            return [dict(r._mapping) for r in rows]

    def findings(self) -> list[dict[str, object]]:
        with self.db.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(identity_findings))]

    def unmerge(self, link_id: int) -> None:
        """Undo one merge; the profiles are rebuilt from the remaining links."""
        with self._lock:
            with self.db.engine.begin() as conn:
                at = utcnow()
                done = conn.execute(
                    update(identity_links)
                    .where(identity_links.c.id == link_id, identity_links.c.undone_at.is_(None))
                    .values(undone_at=at)
                ).rowcount
                if done:  # moves the graph's version: every worker reads its links again
                    conn.execute(identity_unmerges.insert().values(link_id=link_id, at=at))
            if not done:
                raise NotFound(f"no active merge {link_id}", code="merge_not_found")
            self._rebuild()

    def count(self) -> int:
        with self.db.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(identity_links)).scalar_one())


def _person(component: set[str]) -> str:
    customers = sorted(n for n in component if n.startswith("customer:"))
    return customers[0] if customers else min(component)
