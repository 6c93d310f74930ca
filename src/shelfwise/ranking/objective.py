"""What a placement optimises: expected value = P(engagement) x value of the item.

The value is a blend, configured per placement, of a click term (every
engagement is worth something: discovery), revenue (price) and margin
(price x margin rate of the item's band), both in units of the viewed
product's price (product pages, carts) or else the catalog's median price, and
bounded (``money_cap``) so that relevance leads. Slow shipping and thin stock cover discount it. The same
quantities also enter the model as features, so the model can learn how they
change engagement while the objective says what they are worth.

Money never makes a value NaN: a price that is not a positive finite number
is unknown and counts as the reference price; a store with no known price at
all has reference 1 and every item's relative price is 1, so the money term is
the same for every item of a margin band (neutral: relevance orders). The
relative price is capped at ``MAX_RELATIVE_PRICE``, so one absurd price cannot
swamp the blend.
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from shelfwise.ranking.items import MARGIN_RATE, reference_price  # noqa: F401 (re-exported)

MAX_RELATIVE_PRICE = 100.0  # an item's price counts at most this many reference prices

if TYPE_CHECKING:  # Settings imports this module: keep its runtime imports leaf-only
    from shelfwise.ranking.history import FloatArray, IntArray
    from shelfwise.ranking.items import ItemTable
    from shelfwise.ranking.state import RankingState


class PlacementObjective(BaseModel):
    """The value blend of one placement."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    click: float = Field(default=1.0, ge=0, description="Value of an engagement itself.")
    revenue: float = Field(default=0.0, ge=0, description="Weight of price / median price.")
    margin: float = Field(default=0.0, ge=0, description="Weight of margin / median price.")
    sla_penalty_per_day: float = Field(
        default=0.02, ge=0, le=1, description="Value lost per day of shipping SLA."
    )
    min_cover_days: float = Field(
        default=3.0, ge=0, description="Below this many days of stock cover the value shrinks."
    )
    unknown_margin_rate: float = Field(default=0.3, ge=0, le=1)
    money_cap: float | None = Field(
        default=0.5,
        ge=0,
        description="Money adds at most this share of the click value (None: unbounded, the "
        "linear blend of before).",
    )
    popularity_penalty: float = Field(
        default=0.0,
        ge=0,
        le=4,
        description="Value x (1 + events of 28 days / their mean) ** -penalty.",
    )
    chain_weight: float = Field(
        default=0.0,
        ge=0,
        le=8,
        description="Value x (the placement chain's score / its best) ** weight: how much the "
        "placement's own job (similarity to the viewed product, complement lift) counts "
        "beside P(engagement) (ranking.ranker.chain_fit).",
    )

    def digest(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:12]

    def values(
        self,
        items: IntArray,
        table: ItemTable,
        state: RankingState,
        anchor_price: float | None = None,
    ) -> FloatArray:
        """Value of one engagement with each item (> 0 unless every weight is 0).

        Prices are relative to ``anchor_price`` (the viewed product's, on product
        pages and carts) when it is known, else to the catalog's reference price.
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
            rel_price = np.clip(np.where(known, price / ref, 1.0), 0.0, MAX_RELATIVE_PRICE)
        band = table.margin_band[items].astype(np.int64)
        rate = np.where(band >= 0, MARGIN_RATE[np.maximum(band, 0)], self.unknown_margin_rate)
        money = self.revenue * rel_price + self.margin * rel_price * rate
        if self.money_cap is None:
            value = self.click + money
        else:
            weight = self.revenue + self.margin
            per_unit = money / weight if weight > 0 else np.zeros(len(items))
            share = min(weight / self.click, self.money_cap) if self.click > 0 else self.money_cap
            base = self.click if self.click > 0 else 1.0
            value = base * (1.0 + share * per_unit / (1.0 + per_unit))
        if self.popularity_penalty > 0:
            # Popularity as the ranker's features see it: weighted events of the
            # last 28 days (views, carts, buys), against the catalog's mean.
            pop = np.asarray(state.pop_28d[items], dtype=np.float64)
            mean = float(np.mean(state.pop_28d)) if len(state.pop_28d) else 0.0
            if mean > 0:
                value = value * (1.0 + pop / mean) ** (-self.popularity_penalty)
        sla = table.sla_days[items].astype(np.float64)
        value = value / (1.0 + self.sla_penalty_per_day * np.maximum(sla, 0.0))
        if self.min_cover_days > 0:
            stock = table.stock[items].astype(np.float64)
            cover = stock / np.maximum(state.daily_sales[items], 0.05)
            factor = np.where(stock < 0, 1.0, np.minimum(cover / self.min_cover_days, 1.0))
            value = value * factor
        return np.asarray(value, dtype=np.float64)


def _unit(ref_price: float) -> float:
    """``reference_price`` of the state's one reference price, without a quantile per
    request: the price itself when positive and finite, else 1."""
    return ref_price if math.isfinite(ref_price) and ref_price > 0 else 1.0


# Defaults: the home page leans on discovery, the cart on margin, email on revenue.
DEFAULT_OBJECTIVES: dict[str, PlacementObjective] = {
    "home": PlacementObjective(click=1.0, revenue=0.1, margin=0.1),
    "product": PlacementObjective(click=0.5, revenue=0.5, margin=0.5),
    "cart": PlacementObjective(click=0.1, revenue=0.3, margin=1.5),
    "email": PlacementObjective(click=0.2, revenue=1.0, margin=0.5),
}


class RankingSettings(BaseModel):
    """The ranker's knobs (``Settings.ranking``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    objectives: dict[str, PlacementObjective] = Field(
        default_factory=lambda: dict(DEFAULT_OBJECTIVES)
    )
    default_objective: PlacementObjective = PlacementObjective()
    explore_share: float = Field(default=0.1, ge=0, le=0.5)
    explore_max_exposures: float = Field(
        default=50.0, ge=0, description="Items shown fewer times than this may be explored."
    )
    explore_seed: int = 0
    compile_model: bool = True
    time_bucket_seconds: int = Field(
        default=60,
        ge=0,
        description=(
            "Serving: the clock the sources and the ranker's features read is the end of "
            "the request's time bucket of this many seconds, so a scored order is kept "
            "and serves every request of the same context in the bucket (0 = the exact "
            "clock, nothing kept)."
        ),
    )
    kept_orders: int = Field(
        default=1_000,
        ge=0,
        description=(
            "Contexts whose candidates, scored order and served slates (one per "
            "exploration pick) each worker keeps for their time bucket (0 = off)."
        ),
    )

    def objective_for(self, placement: str) -> PlacementObjective:
        return self.objectives.get(placement, self.default_objective)
