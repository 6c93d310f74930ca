"""Who a request is for: its person/anonymous id resolved through the identity graph, cheaply.

The identity graph (:mod:`shelfwise.contracts.identity`) reads the store on every
``person``; on the request path that would be two queries per request. :class:`PersonCache`
memoises ``id -> person id`` and is told the graph's version (an
:class:`~shelfwise.contracts.identity.IdentityVersion`: the newest merge-log row, privacy
erasure and unmerge) by the catalog's change clock, which reads them in the same
round trip as the catalog and rulebook versions (:mod:`shelfwise.serving.freshness`).
So a login linking two devices, an erasure and an unmerge are seen by the very next
request on
every worker, and a request whose id is memoised and whose profile did not change
costs a dictionary lookup.

Most ids on the request path were never linked (anonymous visitors). The cache keeps
the set of nodes the merge log names (read once, then grown from the new links; read
again only after an erasure, a rewritten merge log or too many new links at once), so
such an id resolves to itself without asking the graph at all. A linked id not
memoised is asked of the graph with the version just read, and the graph reads the
store only when its links in memory are older than that version.

When the merge log grew, only the profiles the new links touched are forgotten: their
nodes, and every id memoised to a person id among them (a merge keeps one of the old
person ids, and both were nodes of the merged profile). When the erasures moved (an
erasure deletes links and adds no merge-log row), everything is forgotten, the linked
nodes included (read again, without the erased ones); an unmerge, which marks a row
undone and adds one to ``identity_unmerges``, the same. Every ``max_age_seconds``
(``identity_refresh_seconds``) the memoised ids are dropped too, but not the linked
nodes: reading the whole merge log again every few seconds costs a worker more as the
log grows, and the versions already say when it changed (:meth:`clear` drops both).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from shelfwise.contracts.identity import IdentityVersion

log = logging.getLogger("shelfwise.serving.identity")

KINDS = ("customer", "anonymous", "device")


class Graph(Protocol):
    """What the cache needs of :class:`~shelfwise.contracts.identity.IdentityGraph`."""

    def person(self, any_id: str, as_of: IdentityVersion | None = None) -> str: ...

    def profile(self, any_id: str) -> list[str]: ...

    def merges(self, limit: int = 100) -> list[dict[str, object]]: ...


def _bare(n: str) -> str:
    kind, sep, value = n.partition(":")
    return value if sep and kind in KINDS else n


class PersonCache:
    def __init__(
        self,
        graph: Graph,
        *,
        max_age_seconds: float = 30.0,
        max_entries: int = 200_000,
        max_new_links: int = 64,
    ) -> None:
        self.graph = graph
        self.max_age_seconds = max_age_seconds
        self.max_entries = max_entries
        self.max_new_links = max_new_links
        self._memo: dict[str, str] = {}
        self._by_person: dict[str, set[str]] = {}
        self._linked: set[str] | None = None  # every node the merge log names
        self._seq: int | None = None  # the newest merge-log row followed
        self._removals: tuple[int, int] | None = None  # newest erasure, unmerge, as of the memo
        self._born = time.monotonic()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._memo)

    def person(self, any_id: str, version: IdentityVersion | None) -> str:
        """The person id of ``any_id``; ``version`` is the graph's as just read by the
        change clock (None: the store is unreachable, serve what is memoised)."""
        if version is not None and version.removals != self._removals:
            self._links_removed(version)
        elif version is not None and version.links != self._seq:
            self._advance(version.links)
        elif time.monotonic() - self._born > self.max_age_seconds:
            with self._lock:  # the ids only: the linked nodes follow the versions
                self._reset()
        got = self._memo.get(any_id)
        if got is not None:
            return got
        try:
            linked = self._linked if self._linked is not None else self._load_linked()
            named = any_id in linked or any(f"{k}:{any_id}" in linked for k in KINDS)
            got = self.graph.person(any_id, version) if named else any_id
        except SQLAlchemyError:
            return any_id  # the store is down: the id as given, not memoised
        with self._lock:
            if len(self._memo) >= self.max_entries:
                self._reset()
            self._memo[any_id] = got
            self._by_person.setdefault(got, set()).add(any_id)
        return got

    def clear(self) -> None:
        """Forget every memoised id and the linked nodes (read again when next needed)."""
        with self._lock:
            self._reset()
            self._linked = None

    def _reset(self) -> None:
        """Forget every memoised id (the set of linked nodes stays: it only grows, and a
        node it names that an unmerge freed is still resolved correctly, by the graph)."""
        self._memo, self._by_person = {}, {}
        self._born = time.monotonic()

    def _load_linked(self) -> set[str]:
        rows = self.graph.merges(limit=2**62)
        linked = {str(r[c]) for r in rows for c in ("a", "b")}
        with self._lock:
            self._linked = linked
        return linked

    def _links_removed(self, version: IdentityVersion) -> None:
        """An erasure or an unmerge (or the first read): forget every id and the linked
        nodes; the graph itself reads the store again when next asked (its removals are
        older)."""
        with self._lock:
            self._reset()
            self._linked = None
            self._seq, self._removals = version.links, version.removals

    def _advance(self, seq: int) -> None:
        with self._lock:
            old, self._seq = self._seq, seq
            if old is None or seq < old:  # first read, or the merge log was rewritten
                self._reset()
                self._linked = None
                return
            try:
                links = self._new_links(old, seq)
            except SQLAlchemyError:
                links = None
            if links is None:  # too many to follow one by one
                self._reset()
                self._linked = None
                return
            touched: set[str] = set()
            for a, b in links:
                if self._memo and a not in touched:
                    touched.update(self.graph.profile(a))
                touched.update((a, b))
            if self._linked is not None:
                self._linked.update(touched)
            self._forget(touched)

    def _new_links(self, old: int, seq: int) -> list[tuple[str, str]] | None:
        """The (a, b) nodes of the merge-log rows after ``old``; None when too many."""
        if seq - old > self.max_new_links:
            return None
        rows: Sequence[Mapping[str, object]] = self.graph.merges(limit=seq - old)
        return [(str(r["a"]), str(r["b"])) for r in rows if int(str(r["id"])) > old]

    def _forget(self, nodes: Iterable[str]) -> None:
        memo, by_person = self._memo, self._by_person
        for n in nodes:
            for key in (n, _bare(n), *by_person.pop(n, ()), *by_person.pop(_bare(n), ())):
                person = memo.pop(key, None)
                if person is not None:
                    by_person.get(person, set()).discard(key)
