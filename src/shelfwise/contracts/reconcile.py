"""Product-id reconciliation: do the events' product ids join the catalog?

Each distinct product id found in the interactions is classified:

``joined``       the catalog has it (active)
``alias``        the alias table maps it to a catalog id
``formatting``   equal to a catalog id after trimming, case folding and
                 dropping the leading zeros of every run of digits
                 (``" 00123a"`` vs ``"123A"``, ``"P123"`` vs ``"P000123"``)
``variant``      a variant id whose parent is in the catalog (``123A-XL`` → ``123A``)
``retired``      in the catalog but inactive or discontinued
``unknown``      none of the above

Formatting and variant misses are fixable: :meth:`AliasTable.add_many` records
them so later reads (and ``require_known_products``) resolve them.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from shelfwise.catalog.repository import CatalogRepository
from shelfwise.store.engine import Database
from shelfwise.store.tables import events, interactions, product_aliases
from shelfwise.store.types import utcnow

MISS_CLASSES = ("alias", "formatting", "variant", "retired", "unknown")
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


class _Catalog:
    def __init__(self, repo: CatalogRepository, aliases: dict[str, str]) -> None:
        self.active: set[str] = set()
        self.inactive: set[str] = set()
        self.by_canonical: dict[str, str] = {}
        for p in repo.iter_all():
            live = p.active and p.availability != "discontinued"
            (self.active if live else self.inactive).add(p.product_id)
            self.by_canonical.setdefault(canonical(p.product_id), p.product_id)
        self.aliases = aliases

    def classify(self, pid: str) -> tuple[str, str | None]:
        if pid in self.active:
            return "joined", pid
        if pid in self.aliases:
            return "alias", self.aliases[pid]
        if pid in self.inactive:
            return "retired", pid
        hit = self.by_canonical.get(canonical(pid))
        if hit is not None:
            return "formatting", hit
        m = _VARIANT.match(pid.strip())
        if m is not None:
            parent = self.by_canonical.get(canonical(m.group(1)))
            if parent is not None:
                return "variant", parent
        return "unknown", None


def reconcile(db: Database, repo: CatalogRepository, aliases: AliasTable) -> ReconciliationReport:
    """Classify every product id the interactions name and measure join rates."""
    cat = _Catalog(repo, aliases.all())
    query = (
        select(
            interactions.c.product_id,
            interactions.c.type,
            events.c.platform,
            func.count(),
        )
        .select_from(interactions.join(events, events.c.event_id == interactions.c.event_id))
        .group_by(interactions.c.product_id, interactions.c.type, events.c.platform)
    )
    with db.engine.connect() as conn:
        rows = conn.execute(query).all()
    verdict = {pid: cat.classify(pid) for pid in {r[0] for r in rows}}
    report = ReconciliationReport()
    seg: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    misses: Counter[str] = Counter()
    distinct: dict[str, set[str]] = defaultdict(set)
    for pid, etype, platform, n in rows:
        kind, _target = verdict[pid]
        ok = kind in ("joined", "alias")
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
    report.fixes = sorted(
        (pid, target, kind)
        for pid, (kind, target) in verdict.items()
        if kind in ("formatting", "variant") and target is not None
    )
    return report
