"""Coherence of product-page slates: would a merchant keep what the module shows?

Computed from the served slates themselves (the JSON of ``/v1/recommendations``
or the pipeline's encoded items) and the catalog, for one placement at a time:

- ``same_category``: share of shown items whose category is the viewed product's;
- ``median_price_ratio``: median over shown items of price / the viewed product's
  price (items or anchors without a positive price are left out);
- ``top_item_share``: the largest share of slates one item appears in, and which;
- ``coverage``: distinct shown items over the catalog's available items;
- ``personal_claims``: reasons that claim something about a person (``for_you``,
  ``because_you_viewed``, ``buy_again``, ``session``) on slates asked for without a
  person or a session: each one is false.

A substitute module (``product_similar``) should score high on the first and keep
the second near 1; a complement module (``product_bought_with``, ``cart``) may
cross categories but should not push items many times dearer than the anchor.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PERSONAL_KINDS = frozenset({"for_you", "because_you_viewed", "buy_again", "session"})


@dataclass(frozen=True)
class ServedSlate:
    """One served slate: the viewed product, whether the request named a person or a
    session, and the items as encoded (``product_id`` and ``reasons`` are read)."""

    anchor: str
    items: Sequence[Mapping[str, Any]]
    personal: bool = False


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

    def as_dict(self) -> dict[str, Any]:
        return {
            "slates": self.slates,
            "empty_slates": self.empty_slates,
            "items_shown": self.items_shown,
            "same_category": round(self.same_category, 4),
            "median_price_ratio": round(self.median_price_ratio, 4),
            "top_item": self.top_item,
            "top_item_share": round(self.top_item_share, 4),
            "coverage": round(self.coverage, 4),
            "personal_claims": self.personal_claims,
        }


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
    top = appearances.most_common(1)
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


__all__ = ["PERSONAL_KINDS", "Coherence", "ServedSlate", "coherence"]
