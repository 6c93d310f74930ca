"""Product-id reconciliation: do the events' product ids join the catalog *as of the event*?

Every interaction line's product id is classified against the catalog as it
was when the event occurred:

``joined``         the catalog had it, live (active, not discontinued), at the event time
``alias``          the alias table maps it to a catalog id
``formatting``     equal to a catalog id after trimming, case folding and
                   dropping the leading zeros of every run of digits
                   (``" 00123a"`` vs ``"123A"``, ``"P123"`` vs ``"P000123"``)
``variant``        a variant id whose parent is in the catalog (``123A-XL`` → ``123A``)
``retired``        in the catalog but inactive or discontinued at the event time
``not_yet_listed`` in the catalog, but added after the event (and after the
                   event reached the store)
``unknown``        none of the above

"As of" comes from the catalog's change log (``product_changes``): a
product's first record is when the catalog got it, and every change of
``active``/``availability`` ([old, new] in the log) moves it between live and
retired. A product retired *after* an event therefore still joins that event,
and one retired before it does not. A product's first record is a listing date
only for events that reached the store before it: an event received after the
product was recorded (a backfill of history, e.g. a data-set import that
loads the catalog first) cannot tell when the shop listed it, so it is checked
against the product's first recorded state.

Formatting and variant misses are fixable: :meth:`AliasTable.add_many` records
them so later reads (and ``require_known_products``) resolve them.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, String, cast, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from shelfwise.catalog.repository import CatalogRepository
from shelfwise.store.engine import Database
from shelfwise.store.tables import events, interactions, product_aliases, product_changes, products
from shelfwise.store.types import utcnow

JOINED = frozenset({"joined", "alias"})  # the classes that count as a join
MISS_CLASSES = ("alias", "formatting", "variant", "retired", "not_yet_listed", "unknown")
_STATE_FIELDS = ("created", "active", "availability")
_IN_CHUNK = 900
_PADDING = re.compile(r"(?<![0-9])0+(?=[0-9])")
_VARIANT = re.compile(r"^(.+?)(?:[-_/. ][^-_/. ]{1,12}|[A-Za-z]{1,3})$")


def canonical(product_id: str) -> str:
    """The formatting-insensitive form of an id."""
    return _PADDING.sub("", product_id.strip().upper())


class AliasTable:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._map: dict[str, str] | None = None

    def _load(self) -> dict[str, str]:
        if self._map is None:
            with self.db.engine.connect() as conn:
                self._map = {
                    r.alias: r.product_id
                    for r in conn.execute(
                        select(product_aliases.c.alias, product_aliases.c.product_id)
                    )
                }
        return self._map

    def target(self, alias: str) -> str | None:
        return self._load().get(alias)

    def add_many(self, pairs: Iterable[tuple[str, str, str]]) -> int:
        """Record ``(alias, product_id, kind)`` rows (existing aliases are kept)."""
        now = utcnow()
        rows = [{"alias": a, "product_id": p, "kind": k, "created_at": now} for a, p, k in pairs]
        if not rows:
            return 0
        dialect = postgresql if self.db.backend == "postgresql" else sqlite
        with self.db.engine.begin() as conn:
            conn.execute(dialect.insert(product_aliases).on_conflict_do_nothing(), rows)
        self._map = None
        return len(rows)

    def all(self) -> dict[str, str]:
        return dict(self._load())


@dataclass
class JoinSegment:
    event_type: str
    platform: str
    lines: int
    joined: int

    @property
    def rate(self) -> float:
        return self.joined / self.lines if self.lines else 1.0


@dataclass
class ReconciliationReport:
    lines: int = 0
    joined: int = 0
    misses: dict[str, int] = field(default_factory=dict)  # lines per miss class
    distinct_misses: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    segments: list[JoinSegment] = field(default_factory=list)
    fixes: list[tuple[str, str, str]] = field(default_factory=list)  # alias, product, kind

    @property
    def join_rate(self) -> float:
        return self.joined / self.lines if self.lines else 1.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "joined": self.joined,
            "join_rate": round(self.join_rate, 6),
            "misses": self.misses,
            "distinct_misses": self.distinct_misses,
            "examples": self.examples,
            "segments": [{**s.__dict__, "rate": round(s.rate, 6)} for s in self.segments],
            "fixable_aliases": len(self.fixes),
        }


def _live(active: object, availability: object) -> bool:
    return bool(active) and availability != "discontinued"


@dataclass
class Listing:
    """A product's recorded life: when the catalog first had it, then live/retired
    from ``times[i]`` on (``times[0] == since``)."""

    times: list[datetime]
    live: list[bool]

    @property
    def since(self) -> datetime:
        return self.times[0]

    def state_at(self, at: datetime, received: datetime) -> str:
        """``joined``, ``retired`` or ``not_yet_listed`` for an event that occurred at
        ``at`` and reached the store at ``received``."""
        if at < self.since:
            if received < self.since:
                return "not_yet_listed"
            i = 0  # a backfilled event: the first recorded state is all we know
        else:
            i = bisect_right(self.times, at) - 1
        return "joined" if self.live[i] else "retired"

    def timeless(self, first_received: datetime | None) -> bool:
        """True when no event can get a time-dependent answer: one state all along and
        no event received before the product was recorded."""
        return len(set(self.live)) == 1 and (first_received is None or first_received >= self.since)


def listings(conn: Connection) -> dict[str, Listing]:
    """Every catalog product's :class:`Listing`, rebuilt from its current state
    backwards through the logged ``[old, new]`` changes of active/availability."""
    state = {
        r.product_id: [r.active, r.availability, r.created_at]
        for r in conn.execute(
            select(
                products.c.product_id,
                products.c.active,
                products.c.availability,
                products.c.created_at,
            )
        )
    }
    text = cast(product_changes.c.changes, String)
    log = conn.execute(
        select(
            product_changes.c.product_id, product_changes.c.changes, product_changes.c.changed_at
        )
        .where(or_(*(text.like(f'%"{f}"%') for f in _STATE_FIELDS)))
        .order_by(product_changes.c.seq.desc())
    )
    newest_first: dict[str, list[tuple[datetime, Any]]] = defaultdict(list)
    for pid, changes, at in log:
        if pid in state and isinstance(changes, dict):
            newest_first[pid].append((at, changes))
    return {
        pid: rebuild_listing(active, availability, created_at, newest_first.get(pid, []))
        for pid, (active, availability, created_at) in state.items()
    }


def rebuild_listing(
    active: bool,
    availability: str | None,
    created_at: datetime,
    newest_first: Sequence[tuple[datetime, Mapping[str, Any]]],
) -> Listing:
    """A product's :class:`Listing` from its current state and its change log (newest
    first, as ``(changed_at, diff)``; a diff maps a field to ``[old, new]``, the
    creation is ``{"created": True}``): walking back, each change of ``active`` or
    ``availability`` is undone, so the state before it is known."""
    cur: list[Any] = [active, availability]
    since = created_at
    steps: list[tuple[datetime, bool]] = []
    for at, changes in newest_first:
        if changes.get("created"):
            since = at  # walking backwards: the last one seen is the earliest
            continue
        touched = [f for f in ("active", "availability") if f in changes]
        if not touched:
            continue
        steps.append((at, _live(cur[0], cur[1])))
        for f in touched:  # undo the change: ``cur`` ends as the state at creation
            cur[0 if f == "active" else 1] = changes[f][0]
    steps.reverse()
    return Listing(
        [since, *(at for at, _ in steps)], [_live(cur[0], cur[1]), *(v for _, v in steps)]
    )


class Catalog:
    """The catalog's listings and aliases, to classify product ids (see the module)."""

    def __init__(self, listed: dict[str, Listing], aliases: dict[str, str]) -> None:
        self.listed = listed
        self.by_canonical: dict[str, str] = {}
        for pid in sorted(listed):
            self.by_canonical.setdefault(canonical(pid), pid)
        self.aliases = aliases

    def classify(self, pid: str, state: str | None = None) -> tuple[str, str | None]:
        """The class of ``pid``; ``state`` is its catalog state at the event time when it
        is a catalog id (default: its current state)."""
        listing = self.listed.get(pid)
        if listing is not None:
            state = state or ("joined" if listing.live[-1] else "retired")
            if state == "joined":
                return "joined", pid
        if pid in self.aliases:
            return "alias", self.aliases[pid]
        if listing is not None:
            return state or "retired", pid
        hit = self.by_canonical.get(canonical(pid))
        if hit is not None:
            return "formatting", hit
        m = _VARIANT.match(pid.strip())
        if m is not None:
            parent = self.by_canonical.get(canonical(m.group(1)))
            if parent is not None:
                return "variant", parent
        return "unknown", None


def classified_lines(
    conn: Connection, cat: Catalog, *by: ColumnElement[Any]
) -> Iterator[tuple[Any, ...]]:
    """``(product_id, *by, lines, class)`` over every interaction line, grouped by
    the columns ``by`` (of ``interactions`` or ``events``), classified as of the event.

    Ids whose class cannot depend on time are counted by one grouped query; the
    few whose catalog life changed (or began after events arrived) are grouped by
    event time too and classified per time."""
    line_of = interactions.join(events, events.c.event_id == interactions.c.event_id)
    first_received = conn.execute(select(func.min(events.c.received_at))).scalar_one_or_none()
    timed = sorted(p for p, li in cat.listed.items() if not li.timeless(first_received))
    timed_set = set(timed)
    keys = (interactions.c.product_id, *by)
    for *key, n in conn.execute(select(*keys, func.count()).select_from(line_of).group_by(*keys)):
        if key[0] not in timed_set:
            yield *key, int(n), cat.classify(key[0])[0]
    when = (interactions.c.occurred_at, events.c.received_at)
    for start in range(0, len(timed), _IN_CHUNK):
        query = (
            select(*keys, *when, func.count())
            .select_from(line_of)
            .where(interactions.c.product_id.in_(timed[start : start + _IN_CHUNK]))
            .group_by(*keys, *when)
        )
        for *key, at, received, n in conn.execute(query):
            state = cat.listed[key[0]].state_at(at, received)
            yield *key, int(n), cat.classify(key[0], state)[0]


def reconcile(db: Database, repo: CatalogRepository, aliases: AliasTable) -> ReconciliationReport:
    """Classify every interaction line's product id against the catalog as of the
    event, and measure join rates."""
    report = ReconciliationReport()
    seg: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    misses: Counter[str] = Counter()
    distinct: dict[str, set[str]] = defaultdict(set)
    with db.engine.connect() as conn:
        cat = Catalog(listings(conn), aliases.all())
        rows = list(classified_lines(conn, cat, interactions.c.type, events.c.platform))
    for pid, etype, platform, n, kind in rows:
        ok = kind in JOINED
        report.lines += n
        report.joined += n if ok else 0
        cell = seg[(etype, platform or "unknown")]
        cell[0] += n
        cell[1] += n if ok else 0
        if kind != "joined":
            misses[kind] += n
            distinct[kind].add(pid)
    report.misses = {k: misses[k] for k in MISS_CLASSES if misses[k]}
    report.distinct_misses = {k: len(distinct[k]) for k in MISS_CLASSES if distinct[k]}
    report.examples = {k: sorted(distinct[k])[:5] for k in MISS_CLASSES if distinct[k]}
    report.segments = [JoinSegment(t, p, n, j) for (t, p), (n, j) in sorted(seg.items())]
    verdict = {pid: cat.classify(pid) for pid in {r[0] for r in rows}}
    report.fixes = sorted(
        (pid, target, kind)
        for pid, (kind, target) in verdict.items()
        if kind in ("formatting", "variant") and target is not None
    )
    return report
