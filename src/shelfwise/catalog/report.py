"""Completeness: which commercial attributes the catalog is missing, overall and per category."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel

from shelfwise.catalog.model import Product

CHECKED = (
    "price",
    "stock",
    "margin",
    "brand",
    "category",
    "variant_group",
    "sla",
    "description",
    "image",
)


def _missing(p: Product) -> dict[str, bool]:
    return {
        "price": p.price is None,
        "stock": p.stock_qty is None,
        "margin": p.margin_band is None,
        "brand": p.brand is None,
        "category": p.category_path is None,
        "variant_group": p.variant_group is None,
        "sla": p.shipping_sla_days is None,
        "description": p.description is None,
        "image": p.image_url is None,
    }


class CompletenessRow(BaseModel):
    scope: str
    products: int
    missing_share: dict[str, float]
    missing_count: dict[str, int]


class CompletenessReport(BaseModel):
    overall: CompletenessRow
    by_category: list[CompletenessRow]
    out_of_stock_share: float
    inactive: int

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump()


def _row(scope: str, counts: dict[str, int], n: int) -> CompletenessRow:
    return CompletenessRow(
        scope=scope,
        products=n,
        missing_count={k: counts.get(k, 0) for k in CHECKED},
        missing_share={k: round(counts.get(k, 0) / n, 4) if n else 0.0 for k in CHECKED},
    )


def completeness(products: Iterable[Product], depth: int = 1) -> CompletenessReport:
    """Share of products missing each attribute; categories grouped at ``depth`` levels."""
    total: dict[str, int] = defaultdict(int)
    per_cat: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    per_cat_n: dict[str, int] = defaultdict(int)
    n = oos = inactive = 0
    for p in products:
        n += 1
        oos += p.availability == "out_of_stock"
        inactive += not p.active
        cat = "/".join(p.category_path.split("/")[:depth]) if p.category_path else "(none)"
        per_cat_n[cat] += 1
        for k, miss in _missing(p).items():
            if miss:
                total[k] += 1
                per_cat[cat][k] += 1
    return CompletenessReport(
        overall=_row("(all)", total, n),
        by_category=[_row(c, per_cat[c], per_cat_n[c]) for c in sorted(per_cat_n)],
        out_of_stock_share=round(oos / n, 4) if n else 0.0,
        inactive=inactive,
    )
