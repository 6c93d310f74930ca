"""A home-goods catalog generator: categories with their own price and margin
levels, brands that serve a few categories each, variant groups (colours),
stock-outs, chronic slow suppliers and season tags.

Everything is drawn with numpy in one pass per column, so 100,000 products
take about a second; :class:`SimCatalog` keeps the columns the simulator needs
next to the validated :class:`~shelfwise.catalog.model.Product` rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from shelfwise.catalog.model import Product
from shelfwise.simulate.categories import (
    ADJECTIVES,
    BASE_BRANDS,
    CATEGORIES,
    COLOURS,
    SLOW_BRANDS,
    brand_names,
)

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class CatalogSpec:
    n_products: int = 2_000
    seed: int = 7
    currency: str = "EUR"
    out_of_stock_share: float = 0.06
    variant_share: float = 0.35


@dataclass(frozen=True)
class SimCatalog:
    """The generated catalog: validated products plus the columns the simulator reads.

    Row ``i`` of every array describes ``products[i]``; ``quality`` is the
    latent appeal of an item (ground truth, never written to the catalog).
    """

    spec: CatalogSpec
    records: list[dict[str, Any]]  # the feed form, as PUT /v1/products takes it
    category: IntArray  # index into CATEGORIES
    brand: IntArray  # index into brands
    brands: tuple[str, ...]
    group: IntArray  # variant group number (1-based), shared by colour variants
    price: FloatArray
    cost: FloatArray
    price_position: FloatArray  # 0 = cheapest of its category's range, 1 = dearest
    stock: IntArray
    sla_days: IntArray
    quality: FloatArray

    @property
    def n(self) -> int:
        return len(self.records)

    @property
    def ids(self) -> list[str]:
        return [r["product_id"] for r in self.records]

    @cached_property
    def products(self) -> list[Product]:
        """The records as products, built without re-validation: the values are clean
        by construction (a test checks that validating them changes nothing)."""
        return [Product.model_construct(**r) for r in self.records]

    def in_category(self, cat: int) -> IntArray:
        return np.flatnonzero(self.category == cat)

    def slow_brands(self) -> tuple[str, ...]:
        return tuple(b for b in self.brands if b in SLOW_BRANDS)


def _brand_table(n_products: int, rng: np.random.Generator) -> tuple[tuple[str, ...], BoolArray]:
    """Brand names and which categories each serves (every category has at least two)."""
    names = brand_names(max(len(BASE_BRANDS), n_products // 150), rng)
    n_cat = len(CATEGORIES)
    serves = rng.random((len(names), n_cat)) < 0.22
    for cat in range(n_cat):
        while serves[:, cat].sum() < 2:
            serves[int(rng.integers(len(names))), cat] = True
    for b in range(len(names)):
        if not serves[b].any():
            serves[b, int(rng.integers(n_cat))] = True
    return names, serves


def generate_store(spec: CatalogSpec) -> SimCatalog:
    """Same spec, same catalog: ids, prices, stock and latent quality all come from ``spec.seed``."""
    if spec.n_products < 1:
        raise ValueError("n_products must be at least 1")
    rng = np.random.default_rng(spec.seed)
    n = spec.n_products
    brands, serves = _brand_table(n, rng)

    # Variant groups first: a group shares category, brand, name, price and SLA.
    n_groups = n  # upper bound; truncated once the products are counted
    shares = np.array([c.share for c in CATEGORIES])
    g_cat = rng.choice(len(CATEGORIES), size=n_groups, p=shares / shares.sum())
    g_variants = np.where(
        rng.random(n_groups) < spec.variant_share, rng.integers(2, 5, size=n_groups), 1
    )
    ends = np.cumsum(g_variants)
    n_groups = int(np.searchsorted(ends, n)) + 1
    g_cat, g_variants = g_cat[:n_groups], g_variants[:n_groups].copy()
    g_variants[-1] -= int(ends[n_groups - 1]) - n

    # A brand per group, among the brands that serve its category.
    g_brand = np.empty(n_groups, dtype=np.int64)
    for c in range(len(CATEGORIES)):
        mask = g_cat == c
        options = np.flatnonzero(serves[:, c])
        weights = rng.pareto(1.5, size=len(options)) + 0.2
        g_brand[mask] = rng.choice(options, size=int(mask.sum()), p=weights / weights.sum())

    lo = np.log([CATEGORIES[c].price[0] for c in g_cat])
    hi = np.log([CATEGORIES[c].price[1] for c in g_cat])
    g_pos = rng.beta(1.6, 2.4, size=n_groups)
    g_price = np.round(np.exp(lo + g_pos * (hi - lo)), 2)
    m_lo = np.array([CATEGORIES[c].margin[0] for c in g_cat])
    m_hi = np.array([CATEGORIES[c].margin[1] for c in g_cat])
    g_cost = np.round(g_price * (1 - rng.uniform(m_lo, m_hi)), 2)
    slow = np.isin(np.array(brands)[g_brand], SLOW_BRANDS)
    g_sla = np.where(slow, rng.integers(8, 21, size=n_groups), rng.integers(1, 6, size=n_groups))
    g_adj = rng.integers(len(ADJECTIVES), size=n_groups)
    g_noun = rng.integers(0, 1 << 30, size=n_groups)
    g_quality = rng.normal(0.0, 1.0, size=n_groups)

    group = np.repeat(np.arange(n_groups), g_variants)
    first = np.repeat(np.cumsum(g_variants) - g_variants, g_variants)
    variant_no = np.arange(n) - first
    colour_shift = rng.integers(len(COLOURS), size=n_groups)
    colour = (np.repeat(colour_shift, g_variants) + variant_no * 3) % len(COLOURS)
    stock = np.where(
        rng.random(n) < spec.out_of_stock_share, 0, rng.integers(1, 200, size=n)
    ).astype(np.int64)
    quality = g_quality[group] + rng.normal(0.0, 0.25, size=n)

    records: list[dict[str, Any]] = []
    brand_of = [brands[int(b)] for b in g_brand]
    for i in range(n):
        g = int(group[i])
        cat = CATEGORIES[int(g_cat[g])]
        brand = brand_of[g]
        name = f"{ADJECTIVES[int(g_adj[g])]} {cat.nouns[int(g_noun[g]) % len(cat.nouns)]}"
        col = COLOURS[int(colour[i])]
        multi = int(g_variants[g]) > 1
        record: dict[str, Any] = {"product_id": f"P{i + 1:06d}"}
        if multi:
            record["parent_id"] = f"G{g + 1:06d}"
        record.update(
            title=f"{name} - {col}" if multi else name,
            description=f"{name} by {brand}, {col}. Part of our {cat.path.split('/')[0]} range.",
            category_path=cat.path,
            brand=brand,
            price=float(g_price[g]),
            currency=spec.currency,
            cost=float(g_cost[g]),
            stock_qty=int(stock[i]),
            shipping_sla_days=int(g_sla[g]),
            tags=cat.tags,
            season_tags=cat.seasons,
            attributes={"colour": col},
            image_url=f"/static/img/{cat.path.replace('/', '-')}.svg",
        )
        records.append(record)
    return SimCatalog(
        spec=spec,
        records=records,
        category=g_cat[group].astype(np.int64),
        brand=g_brand[group],
        brands=brands,
        group=(group + 1).astype(np.int64),
        price=g_price[group],
        cost=g_cost[group],
        price_position=g_pos[group],
        stock=stock,
        sla_days=g_sla[group].astype(np.int64),
        quality=quality,
    )


def generate_catalog(spec: CatalogSpec) -> list[Product]:
    """Same spec, same catalog (ids, prices and stock are all drawn from ``spec.seed``)."""
    return generate_store(spec).products
