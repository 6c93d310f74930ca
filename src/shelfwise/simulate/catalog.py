"""A home-goods catalog generator: categories with their own price and margin
levels, brands, variant groups, stock-outs, slow suppliers and season tags."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shelfwise.catalog.model import Product


@dataclass(frozen=True)
class CategorySpec:
    path: str
    nouns: tuple[str, ...]
    price: tuple[float, float]  # log-uniform range
    margin: tuple[float, float]  # gross margin rate range
    share: float
    tags: tuple[str, ...] = ()
    seasons: tuple[str, ...] = ()


CATEGORIES: tuple[CategorySpec, ...] = (
    CategorySpec(
        "bedding/duvet-covers", ("Duvet cover", "Duvet set"), (25, 160), (0.35, 0.6), 0.08
    ),
    CategorySpec("bedding/sheets", ("Fitted sheet", "Flat sheet"), (15, 90), (0.35, 0.6), 0.07),
    CategorySpec("bedding/pillows", ("Pillow", "Pillowcase pair"), (10, 70), (0.3, 0.55), 0.06),
    CategorySpec(
        "bedding/throws", ("Throw", "Blanket"), (25, 180), (0.4, 0.65), 0.05, (), ("winter",)
    ),
    CategorySpec(
        "kitchen/cookware", ("Frying pan", "Saucepan", "Casserole"), (20, 250), (0.25, 0.45), 0.08
    ),
    CategorySpec(
        "kitchen/tableware", ("Dinner plate set", "Bowl set", "Mug"), (8, 120), (0.35, 0.6), 0.08
    ),
    CategorySpec(
        "kitchen/utensils", ("Spatula", "Whisk", "Knife block"), (5, 90), (0.3, 0.55), 0.06
    ),
    CategorySpec("decor/vases", ("Vase", "Bud vase"), (15, 140), (0.45, 0.7), 0.05),
    CategorySpec(
        "decor/premium",
        ("Sculpture", "Art print", "Mirror"),
        (120, 900),
        (0.45, 0.7),
        0.04,
        ("premium",),
    ),
    CategorySpec("decor/candles", ("Scented candle", "Candle holder"), (8, 60), (0.5, 0.75), 0.05),
    CategorySpec("bath/towels", ("Bath towel", "Hand towel set"), (10, 80), (0.35, 0.6), 0.06),
    CategorySpec("bath/accessories", ("Soap dispenser", "Bath mat"), (8, 60), (0.35, 0.6), 0.05),
    CategorySpec("lighting/lamps", ("Table lamp", "Floor lamp"), (35, 400), (0.3, 0.55), 0.06),
    CategorySpec(
        "lighting/bulbs", ("LED bulb", "Bulb pack"), (4, 30), (0.15, 0.3), 0.03, ("utility",)
    ),
    CategorySpec(
        "seasonal/christmas",
        ("Christmas bauble set", "Advent candle", "Wreath"),
        (8, 90),
        (0.5, 0.75),
        0.05,
        ("seasonal",),
        ("christmas",),
    ),
    CategorySpec(
        "seasonal/garden",
        ("Planter", "Outdoor cushion"),
        (12, 150),
        (0.35, 0.6),
        0.04,
        ("seasonal",),
        ("summer",),
    ),
    CategorySpec(
        "parts/replacement",
        ("Replacement lid", "Spare filter", "Replacement handle"),
        (3, 35),
        (0.1, 0.3),
        0.05,
        ("replacement-part",),
    ),
    CategorySpec(
        "utility/storage",
        ("Storage box", "Hanger set", "Drawer liner"),
        (4, 45),
        (0.15, 0.35),
        0.04,
        ("utility",),
    ),
)

ADJECTIVES = (
    "Linen",
    "Oak",
    "Cotton",
    "Stoneware",
    "Brushed",
    "Velvet",
    "Nordic",
    "Rustic",
    "Classic",
    "Woven",
    "Matte",
    "Glazed",
    "Walnut",
    "Marble",
    "Bamboo",
)
COLOURS = ("white", "grey", "sage", "navy", "sand", "charcoal", "terracotta", "blush")
BRANDS = (
    "Hearthwood",
    "Lumen & Co",
    "Nordhem",
    "Casa Verde",
    "Stillwater",
    "Fernbrook",
    "Atelier Nine",
    "Oakmoor",
    "Brightly",
    "Kettle & Pan",
    "Softloom",
    "Gleam",
    "Homefield",
    "Vireo",
    "Pinecrest",
    "Maison Clair",
    "Tidy",
    "Everfix",
)
SLOW_BRANDS = ("Atelier Nine", "Vireo")  # chronic slow suppliers


@dataclass(frozen=True)
class CatalogSpec:
    n_products: int = 2_000
    seed: int = 7
    currency: str = "EUR"
    out_of_stock_share: float = 0.06
    variant_share: float = 0.35


def generate_catalog(spec: CatalogSpec) -> list[Product]:
    """Same spec, same catalog (ids, prices and stock are all drawn from ``spec.seed``)."""
    rng = np.random.default_rng(spec.seed)
    shares = np.array([c.share for c in CATEGORIES])
    cat_of = rng.choice(len(CATEGORIES), size=spec.n_products, p=shares / shares.sum())
    products: list[Product] = []
    n = 0
    group = 0
    while n < spec.n_products:
        cat = CATEGORIES[int(cat_of[n])]
        brand = BRANDS[int(rng.integers(len(BRANDS)))]
        name = f"{ADJECTIVES[int(rng.integers(len(ADJECTIVES)))]} {cat.nouns[int(rng.integers(len(cat.nouns)))]}"
        lo, hi = np.log(cat.price[0]), np.log(cat.price[1])
        price = float(round(np.exp(rng.uniform(lo, hi)), 2))
        cost = round(price * (1 - rng.uniform(*cat.margin)), 2)
        variants = int(rng.integers(2, 5)) if rng.random() < spec.variant_share else 1
        variants = min(variants, spec.n_products - n)
        group += 1
        colours = rng.permutation(len(COLOURS))[:variants]
        sla = int(rng.integers(8, 21)) if brand in SLOW_BRANDS else int(rng.integers(1, 6))
        for v in range(variants):
            n += 1
            stock = 0 if rng.random() < spec.out_of_stock_share else int(rng.integers(1, 200))
            colour = COLOURS[int(colours[v])]
            products.append(
                Product(
                    product_id=f"P{n:06d}",
                    parent_id=f"G{group:06d}" if variants > 1 else None,
                    title=f"{name} - {colour}" if variants > 1 else name,
                    description=f"{name} by {brand}, {colour}. Part of our {cat.path.split('/')[0]} range.",
                    category_path=cat.path,
                    brand=brand,
                    price=price,
                    currency=spec.currency,
                    cost=cost,
                    stock_qty=stock,
                    shipping_sla_days=sla,
                    tags=cat.tags,
                    season_tags=cat.seasons,
                    attributes={"colour": colour},
                    image_url=f"/static/img/{cat.path.replace('/', '-')}.svg",
                )
            )
    return products
