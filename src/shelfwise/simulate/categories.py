"""The home-goods store's vocabulary: categories with price and margin levels,
season tags, brand names and the chronic slow suppliers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
BASE_BRANDS = (
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

_PREFIXES = ("North", "Ash", "Willow", "Stone", "Clay", "Fern", "Birch", "Moss", "Linen", "Elm")
_SUFFIXES = ("field", "wick", "ford", "haven", "mere", "dale", " Home", " Studio", " & Co", "craft")


def brand_names(n: int, rng: np.random.Generator) -> tuple[str, ...]:
    """The base brands, then invented ones (``Willowmere``, ``Clay Studio``) up to ``n``."""
    names = list(BASE_BRANDS)
    pool = [p + s for p in _PREFIXES for s in _SUFFIXES]
    order = rng.permutation(len(pool))
    extra = [pool[int(i)] for i in order if pool[int(i)] not in names]
    k = 2
    while len(names) + len(extra) < n:  # very large catalogs: number the series
        extra += [f"{pool[int(i)]} {k}" for i in order]
        k += 1
    return tuple(names + extra[: max(0, n - len(names))])


def category_index(path: str) -> int:
    for i, c in enumerate(CATEGORIES):
        if c.path == path:
            return i
    raise KeyError(path)
