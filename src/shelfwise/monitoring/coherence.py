"""Coherence of product-page slates: would a merchant keep what the module shows?

Computed from the served slates themselves (the decision log's slates, the JSON of
``/v1/recommendations`` or the pipeline's encoded items) and the catalog, for one
placement at a time:

- ``same_category``: share of shown items whose category is the viewed product's;
- ``median_price_ratio``: median over shown items of price / the viewed product's
  price (items or anchors without a positive price are left out);
- ``top_item_share``: the largest share of slates one item appears in, and which (of
  items tied on it, the first id);
- ``coverage``: distinct shown items over the catalog's available items;
- ``personal_claims``: reasons that claim something about a person (``for_you``,
  ``because_you_viewed``, ``because_you_bought``, ``buy_again``, ``session``) on
  slates asked for without a person or a session: each one is false.

A substitute module (``product_similar``) should score high on the first and keep
the second near 1; a complement module (``product_bought_with``, ``cart``) may
cross categories but should not push items many times dearer than the anchor.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shelfwise.monitoring.decisions import DecisionLogReader, ServedSlate

if TYPE_CHECKING:
    from shelfwise.catalog.snapshot import CatalogSnapshot

PERSONAL_KINDS = frozenset(
    {"for_you", "because_you_viewed", "because_you_bought", "buy_again", "session"}
)


@dataclass(frozen=True)
class Coherence:
    slates: int
    empty_slates: int
    items_shown: int
    same_category: float
    median_price_ratio: float
    top_item: str | None
    top_item_share: float
    coverage: float
    personal_claims: int

    def as_dict(self, claims: bool = True) -> dict[str, Any]:
        """The measures rounded for a report; ``claims=False`` leaves out
        ``personal_claims`` (slates asked with a session, where none can be false)."""
        out = {
            "slates": self.slates,
            "empty_slates": self.empty_slates,
            "items_shown": self.items_shown,
            "same_category": round(self.same_category, 4),
            "median_price_ratio": (
                None if math.isnan(self.median_price_ratio) else round(self.median_price_ratio, 4)
            ),
            "top_item": self.top_item,
            "top_item_share": round(self.top_item_share, 4),
            "coverage": round(self.coverage, 4),
            "personal_claims": self.personal_claims,
        }
        if not claims:
            del out["personal_claims"]
        return out


def coherence(
    slates: Sequence[ServedSlate],
    category: Mapping[str, str | None],
    price: Mapping[str, float | None],
    catalog_size: int,
) -> Coherence:
    """The coherence of ``slates`` against the catalog's ``category`` and ``price``
    (by product id); ``catalog_size``: the available products (the coverage base)."""
    shown = same = claims = empty = 0
    ratios: list[float] = []
    appearances: Counter[str] = Counter()
    distinct: set[str] = set()
    for slate in slates:
        if not slate.items:
            empty += 1
        anchor_cat = category.get(slate.anchor)
        anchor_price = price.get(slate.anchor)
        ids = {str(it["product_id"]) for it in slate.items}
        appearances.update(ids)
        distinct |= ids
        for it in slate.items:
            pid = str(it["product_id"])
            shown += 1
            same += int(anchor_cat is not None and category.get(pid) == anchor_cat)
            p = price.get(pid)
            if anchor_price and anchor_price > 0 and p and p > 0:
                ratios.append(p / anchor_price)
            if not slate.personal:
                claims += sum(r.get("kind") in PERSONAL_KINDS for r in it.get("reasons", ()))
    # the item in most slates; of a tie, the first id (the same answer in every process)
    top = sorted(appearances.items(), key=lambda kv: (-kv[1], kv[0]))[:1]
    n = len(slates)
    return Coherence(
        slates=n,
        empty_slates=empty,
        items_shown=shown,
        same_category=same / shown if shown else 0.0,
        median_price_ratio=statistics.median(ratios) if ratios else float("nan"),
        top_item=top[0][0] if top else None,
        top_item_share=top[0][1] / n if top and n else 0.0,
        coverage=len(distinct) / catalog_size if catalog_size else 0.0,
        personal_claims=claims,
    )


# How many of a placement's newest slates a report reads (the window's slates beyond
# it are left out, and the report says so): ~0.5 s of a dashboard page per placement.
SLATES_READ = 5_000


@dataclass(frozen=True)
class CoherenceRow:
    """One placement's coherence, over every viewed product (``category`` None) or over
    the viewed products of one category; ``top_title``: the top item's title."""

    placement: str
    category: str | None
    coherence: Coherence
    top_title: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "placement": self.placement,
            "category": self.category,
            **self.coherence.as_dict(),
            "top_item_title": self.top_title,
        }


@dataclass(frozen=True)
class CoherenceReport:
    """The coherence of the product placements' slates served in ``[start, end)``:
    per placement, then per category of the viewed product (most slates first).
    ``truncated``: the placements whose window held more than ``limit`` slates (the
    newest ``limit`` were read)."""

    start: datetime
    end: datetime
    placements: tuple[str, ...]
    rows: list[CoherenceRow]
    limit: int
    truncated: tuple[str, ...]

    def overall(self) -> list[CoherenceRow]:
        return [r for r in self.rows if r.category is None]

    def by_category(self, placement: str | None = None) -> list[CoherenceRow]:
        return [
            r
            for r in self.rows
            if r.category is not None and (placement is None or r.placement == placement)
        ]

    def rows_of(self, placement: str | None, by_category: bool) -> list[CoherenceRow]:
        """One placement's rows (None: every placement's), with or without its rows per
        viewed category."""
        return [
            r
            for r in self.rows
            if (placement is None or r.placement == placement)
            and (by_category or r.category is None)
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "placements": list(self.placements),
            "rows": [r.as_dict() for r in self.rows],
            "limit": self.limit,
            "truncated": list(self.truncated),
        }


def catalog_of(
    snapshot: CatalogSnapshot, slates: Sequence[ServedSlate]
) -> tuple[dict[str, str | None], dict[str, float | None], dict[str, str]]:
    """Category, price and title of every viewed and shown product of ``slates`` in
    the catalog ``snapshot`` (one the catalog no longer has: no category, no price)."""
    category: dict[str, str | None] = {}
    price: dict[str, float | None] = {}
    title: dict[str, str] = {}
    for s in slates:
        for pid in (s.anchor, *(str(it["product_id"]) for it in s.items)):
            if pid in category:
                continue
            i = snapshot.index_of(pid)
            product = snapshot.product(i) if i is not None else None
            category[pid] = product.category_path if product else None
            price[pid] = product.price if product else None
            if product is not None:
                title[pid] = product.title
    return category, price, title


def available(snapshot: CatalogSnapshot) -> int:
    """The products available now: coverage's base."""
    return int(snapshot.available.sum()) if len(snapshot) else 0


def served_coherence(
    log: DecisionLogReader,
    snapshot: CatalogSnapshot,
    placements: Sequence[str],
    start: datetime,
    end: datetime,
    limit: int = SLATES_READ,
) -> CoherenceReport:
    """Coherence of the slates ``log`` served for ``placements`` (the product placements:
    their requests name the viewed product) in ``[start, end)``, priced and categorised
    by the current catalog ``snapshot``. Anchors the catalog no longer knows count
    against no category and no price."""
    served = log.anchored(start, end, placements, limit + 1)
    truncated = tuple(p for p in placements if len(served.get(p, ())) > limit)
    read = [s for slates in served.values() for s in slates[:limit]]
    category, price, title = catalog_of(snapshot, read)
    size = available(snapshot)
    rows: list[CoherenceRow] = []
    for placement in placements:
        slates = served.get(placement, [])[:limit]
        if not slates:
            continue
        groups: dict[str, list[ServedSlate]] = {}
        for s in slates:
            groups.setdefault(category.get(s.anchor) or "(unknown)", []).append(s)
        for cat, group in [(None, slates), *sorted(groups.items(), key=lambda g: -len(g[1]))]:
            c = coherence(group, category, price, size)
            rows.append(CoherenceRow(placement, cat, c, title.get(c.top_item or "")))
    return CoherenceReport(start, end, tuple(placements), rows, limit, truncated)


__all__ = [
    "PERSONAL_KINDS",
    "SLATES_READ",
    "Coherence",
    "CoherenceReport",
    "CoherenceRow",
    "ServedSlate",
    "available",
    "catalog_of",
    "coherence",
    "served_coherence",
]
