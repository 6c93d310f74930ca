"""What a placement optimises: expected value = P(engagement) x value of the item.

The value is a blend, configured per placement, of a click term (every
engagement is worth something: discovery), revenue (what one purchase of the
item brings: its price x ``RankingState.line_units``, how many of its price one
purchase line of it brings, so a carton of 44 gliders is not valued as one)
and margin (that revenue x the margin rate of the item's band), both in units
of one purchase of the viewed product (product pages, carts) or else of the
catalog's median price, and bounded (``money_cap``) so that relevance leads.
Slow shipping and thin stock cover discount it. The same
quantities also enter the model as features, so the model can learn how they
change engagement while the objective says what they are worth.

Money never makes a value NaN: a price that is not a positive finite number
is unknown and counts as the reference price; a store with no known price at
all has reference 1 and every item's relative price is 1, so the money term is
the same for every item of a margin band (neutral: relevance orders). The
relative price is capped at ``MAX_RELATIVE_PRICE``, so one absurd price cannot
swamp the blend.

The objectives themselves (``PlacementObjective``, ``RankingSettings``) are
settings and live in ``shelfwise.config`` (re-exported here); this module
computes with them (:func:`item_values`).
"""

from __future__ import annotations

import math

import numpy as np

from shelfwise.config import (  # the settings live in config
    DEFAULT_OBJECTIVES,
    PlacementObjective,
    RankingSettings,
)
from shelfwise.ranking.history import FloatArray, IntArray
from shelfwise.ranking.items import (
    MARGIN_RATE,
    ItemTable,
    reference_price,
)
from shelfwise.ranking.state import RankingState

MAX_RELATIVE_PRICE = 100.0  # an item's price counts at most this many reference prices


def item_values(
    objective: PlacementObjective,
    items: IntArray,
    table: ItemTable,
    state: RankingState,
    anchor_price: float | None = None,
) -> FloatArray:
    """Value of one engagement with each item (> 0 unless every weight is 0).

    One purchase of an item is worth its price times ``state.line_units`` (how many of
    its price one purchase line of it brings, relative to the store's typical line),
    relative to ``anchor_price`` (one purchase of the viewed product, on product pages
    and carts: :func:`shelfwise.ranking.ranker.anchor_price`) when it is known, else to
    the catalog's reference price.
    With ``money_cap`` the money term is ``m / (1 + m)`` (m: the revenue and
    margin blend per unit of money weight) times ``min(money weight / click,
    money_cap)`` times the click value: a dearer item can never be worth more
    than ``1 + money_cap`` times a cheap one of equal engagement, so relevance
    leads."""
    price = np.asarray(table.price[items], dtype=np.float64)
    ref = _unit(state.ref_price)
    if anchor_price is not None and np.isfinite(anchor_price) and anchor_price > 0:
        ref = float(anchor_price)
    with np.errstate(invalid="ignore", over="ignore"):
        known = np.isfinite(price) & (price > 0)
        per_line = np.where(known, price / ref, 1.0) * state.line_units[items]
        rel_price = np.clip(per_line, 0.0, MAX_RELATIVE_PRICE)
    band = table.margin_band[items].astype(np.int64)
    rate = np.where(band >= 0, MARGIN_RATE[np.maximum(band, 0)], objective.unknown_margin_rate)
    money = objective.revenue * rel_price + objective.margin * rel_price * rate
    if objective.money_cap is None:
        value = objective.click + money
    else:
        weight = objective.revenue + objective.margin
        per_unit = money / weight if weight > 0 else np.zeros(len(items))
        share = (
            min(weight / objective.click, objective.money_cap)
            if objective.click > 0
            else objective.money_cap
        )
        base = objective.click if objective.click > 0 else 1.0
        value = base * (1.0 + share * per_unit / (1.0 + per_unit))
    if objective.popularity_penalty > 0:
        # Popularity as the ranker's features see it: weighted events of the
        # last 28 days (views, carts, buys), against the catalog's mean.
        pop = np.asarray(state.pop_28d[items], dtype=np.float64)
        mean = float(np.mean(state.pop_28d)) if len(state.pop_28d) else 0.0
        if mean > 0:
            value = value * (1.0 + pop / mean) ** (-objective.popularity_penalty)
    sla = table.sla_days[items].astype(np.float64)
    value = value / (1.0 + objective.sla_penalty_per_day * np.maximum(sla, 0.0))
    if objective.min_cover_days > 0:
        stock = table.stock[items].astype(np.float64)
        cover = stock / np.maximum(state.daily_sales[items], 0.05)
        factor = np.where(stock < 0, 1.0, np.minimum(cover / objective.min_cover_days, 1.0))
        value = value * factor
    return np.asarray(value, dtype=np.float64)


def _unit(ref_price: float) -> float:
    """``reference_price`` of the state's one reference price, without a quantile per
    request: the price itself when positive and finite, else 1."""
    return ref_price if math.isfinite(ref_price) and ref_price > 0 else 1.0


__all__ = [
    "DEFAULT_OBJECTIVES",
    "MARGIN_RATE",
    "MAX_RELATIVE_PRICE",
    "PlacementObjective",
    "RankingSettings",
    "item_values",
    "reference_price",
]
