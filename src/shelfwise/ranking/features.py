"""One feature definition for training and serving.

``build_features`` turns one request (context, candidate set) into a float
matrix, reading only the request, the catalog columns and a ``RankingState``
fitted on the history before the request's time. The training set calls it
for past decision times, the ranker for live requests: the same code, so the
values agree (``tests/unit/test_ranking_features.py`` proves it on a log).

Missing values are NaN (LightGBM routes them on their own branch).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from shelfwise.candidates.base import RecContext
from shelfwise.ranking.candidates import CandidateSet
from shelfwise.ranking.history import FloatArray, IntArray, epoch
from shelfwise.ranking.items import ItemTable
from shelfwise.ranking.state import DAY, RankingState, week_of

BASE_FEATURES: tuple[str, ...] = (
    "n_sources",
    "aff_category",  # share of the person's durable activity in the item's category
    "aff_brand",
    "aff_price_band",
    "sess_category_share",  # share of live-session events in the item's category
    "sess_price_ratio",  # item price / mean price of the session's items
    "sess_minutes_since_last",
    "sess_seen",  # the item was viewed/carted in the live session
    "pop_7d",  # log1p weighted events, last 7 days
    "pop_28d",
    "trend",  # 7-day rate over 28-day rate
    "season_index",  # the category's index for the request's week
    "stock_level",  # log1p units (NaN = unknown)
    "cover_days",  # stock / daily sales (NaN = unknown)
    "margin_band",  # 0 low, 1 medium, 2 high (NaN = unknown)
    "sla_days",
    "log_price",
    "price_rel_context",  # item price / mean price of the context items
    "price_rel_cart",
    "price_rel_usual",  # item price / the person's usual unit price
    "seen_before",  # durable history: viewed, carted or bought before
    "bought_count",  # log1p purchases of this item by the person
    "days_since_bought",
    "days_since_seen",
    "person_activity",  # log1p purchases of the person
    "days_since_person_active",
    "item_age_days",  # since the item's first event
    "new_buyers_7d",  # log1p people who bought the item for the first time, last 7 days
    "new_buyers_28d",
    "repeat_rate",  # share of the item's buyers who bought it again on another day
    "buy_days",  # log1p days on which the person bought this item
    "due_ratio",  # days since the person bought it / its repurchase cycle (theirs or the item's)
    "person_order_days",  # log1p days on which the person bought anything
    "person_gap_days",  # mean days between the person's purchase days
    "person_new_share",  # share of the person's purchases that were first-time items
    "buy_day_share",  # days the person bought this item / days they bought anything (a staple)
    "buy_lag_days",  # days from the person's last purchase of this item to their last activity
    "rebuy_28d",  # share of the item's earlier buyers who bought it again in the last 28 days
    "rebuy_expected",  # buy_day_share x rebuy_28d: a staple of theirs that people buy again now
)


@dataclass(frozen=True)
class FeatureSpec:
    """The ordered feature names for a list of sources; hashed onto the model artefact.

    ``base``: the item and person features the model reads, in order: this version's
    :data:`BASE_FEATURES` for a model trained now; for a model of an earlier version,
    the ones it was trained with (each still computed here, so a bundle keeps its
    learned ranker across an upgrade that adds features)."""

    sources: tuple[str, ...]
    base: tuple[str, ...] = BASE_FEATURES

    @property
    def names(self) -> tuple[str, ...]:
        per_source = tuple(f"src_{s}_{part}" for s in self.sources for part in ("score", "rank"))
        return per_source + self.base

    @cached_property
    def base_columns(self) -> IntArray | None:
        """Where each of ``base`` is among :data:`BASE_FEATURES` (None: all of them, in
        order); a feature this version does not compute is a ``ValueError``."""
        if self.base == BASE_FEATURES:
            return None
        unknown = [f for f in self.base if f not in BASE_FEATURES]
        if unknown:
            raise ValueError(f"features this version does not compute: {', '.join(unknown)}")
        return np.array([BASE_FEATURES.index(f) for f in self.base], dtype=np.int64)

    def digest(self) -> str:
        return hashlib.sha256("\n".join(self.names).encode()).hexdigest()[:12]

    def source_columns(self) -> dict[str, tuple[int, int]]:
        """Column indices (score, rank) of each source."""
        return {s: (2 * i, 2 * i + 1) for i, s in enumerate(self.sources)}

    @classmethod
    def of(cls, sources: Sequence[str]) -> FeatureSpec:
        return cls(tuple(sources))


def _ratio(num: FloatArray, den: float) -> FloatArray:
    if not np.isfinite(den) or den <= 0:
        return np.full(len(num), np.nan)
    return num / den


def _mean_price(items: ItemTable, idx: Sequence[int]) -> float:
    if not idx:
        return float("nan")
    prices = items.price[np.asarray(idx, dtype=np.int64)]
    prices = prices[np.isfinite(prices)]
    return float(prices.mean()) if len(prices) else float("nan")


def build_features(
    ctx: RecContext,
    cands: CandidateSet,
    state: RankingState,
    items: ItemTable,
    spec: FeatureSpec,
) -> FloatArray:
    """The (candidates x features) matrix of one request, columns in ``spec.names`` order."""
    if cands.sources != spec.sources:
        raise ValueError(f"candidate sources {cands.sources} do not match {spec.sources}")
    n, n_src = len(cands), len(spec.sources)
    x = np.empty((n, 2 * n_src + len(BASE_FEATURES)))
    x[:, 0 : 2 * n_src : 2] = cands.scores
    x[:, 1 : 2 * n_src : 2] = cands.ranks
    f = x[:, 2 * n_src :]
    it = cands.items
    now = epoch(ctx.now)
    person = state.person(ctx.person_id)
    price = items.price[it]
    category = items.category[it].astype(np.int64)

    f[:, 0] = n_src - np.isnan(cands.scores).sum(1)
    f[:, 1] = state.person_categories.lookup(person, category, 0.0)[:, 0]
    f[:, 2] = state.person_brands.lookup(person, items.brand[it].astype(np.int64), 0.0)[:, 0]
    band = state.price_band(price)
    f[:, 3] = state.person_bands[person, band] if person is not None else 0.0

    if ctx.session:
        s_items = np.fromiter((e.item for e in ctx.session), dtype=np.int64, count=len(ctx.session))
        f[:, 4] = (category[:, None] == items.category[s_items][None, :]).mean(1)
        f[:, 5] = _ratio(price, _mean_price(items, list(s_items)))
        f[:, 6] = (now - epoch(ctx.session[-1].at)) / 60.0
        f[:, 7] = (it[:, None] == s_items[None, :]).any(1)
    else:
        f[:, 4], f[:, 5], f[:, 6], f[:, 7] = 0.0, np.nan, np.nan, 0.0

    pop7, pop28 = state.pop_7d[it], state.pop_28d[it]
    f[:, 8] = np.log1p(pop7)
    f[:, 9] = np.log1p(pop28)
    f[:, 10] = (pop7 / 7.0 + 0.1) / (pop28 / 28.0 + 0.1)
    f[:, 11] = state.season[np.minimum(category, len(state.season) - 1), week_of(now)]
    stock = items.stock[it].astype(np.float64)
    stock[stock < 0] = np.nan
    f[:, 12] = np.log1p(stock)
    f[:, 13] = stock / np.maximum(state.daily_sales[it], 0.05)
    margin = items.margin_band[it].astype(np.float64)
    margin[margin < 0] = np.nan
    f[:, 14] = margin
    sla = items.sla_days[it].astype(np.float64)
    sla[sla < 0] = np.nan
    f[:, 15] = sla
    f[:, 16] = np.log(np.where(price > 0, price, np.nan))
    f[:, 17] = _ratio(price, _mean_price(items, ctx.context_items))
    f[:, 18] = _ratio(price, _mean_price(items, ctx.cart_items))
    spend = state.person_spend[person] if person is not None else np.nan
    f[:, 19] = _ratio(price, float(spend))

    hist = state.person_items.lookup(person, it, -1.0)
    purchases, last_buy, last_seen = hist[:, 0], hist[:, 1], hist[:, 2]
    f[:, 20] = last_seen >= 0
    f[:, 21] = np.log1p(np.maximum(purchases, 0.0))
    f[:, 22] = np.where(last_buy >= 0, (now - last_buy) / DAY, np.nan)
    f[:, 23] = np.where(last_seen >= 0, (now - last_seen) / DAY, np.nan)
    if person is not None:
        f[:, 24] = np.log1p(state.person_activity[person])
        last = state.person_last_at[person]
        f[:, 25] = (now - last) / DAY if last >= 0 else np.nan
    else:
        f[:, 24], f[:, 25] = 0.0, np.nan
    first = state.item_first_at[it]
    f[:, 26] = np.where(first >= 0, (now - first) / DAY, np.nan)
    f[:, 27] = np.log1p(state.new_buyers_7d[it])
    f[:, 28] = np.log1p(state.new_buyers_28d[it])
    f[:, 29] = state.repeat_rate[it]
    buy_days = np.maximum(hist[:, 5], 0.0)
    f[:, 30] = np.log1p(buy_days)
    first_buy = hist[:, 4]
    own_cycle = (last_buy - first_buy) / DAY / np.maximum(buy_days - 1, 1)
    cycle = np.where(buy_days >= 2, np.maximum(own_cycle, 1.0), state.item_cycle_days[it])
    f[:, 31] = np.where(last_buy >= 0, (now - last_buy) / DAY / cycle, np.nan)
    if person is not None:
        f[:, 32] = np.log1p(state.person_order_days[person])
        f[:, 33] = state.person_gap_days[person]
        f[:, 34] = state.person_new_share[person]
    else:
        f[:, 32], f[:, 33], f[:, 34] = 0.0, np.nan, np.nan
    # Re-ordering (wholesale): how often the item is in the person's orders, and whether it
    # was in their latest one (0 days) or dropped out of their orders since (many days).
    order_days = state.person_order_days[person] if person is not None else 0.0
    f[:, 35] = np.where(order_days > 0, buy_days / max(order_days, 1.0), np.nan)
    last_active = state.person_last_at[person] if person is not None else -1
    f[:, 36] = np.where(
        (last_buy >= 0) & (last_active >= 0), (last_active - last_buy) / DAY, np.nan
    )
    # Buying again now: the item's earlier buyers who came back in the last 28 days, and
    # that share weighted by how much of a staple the item is in the person's orders.
    f[:, 37] = state.rebuy_28d[it]
    f[:, 38] = np.nan_to_num(f[:, 35]) * f[:, 37]
    columns = spec.base_columns
    if columns is not None:  # a model of an earlier version: its own features, in its order
        return np.concatenate([x[:, : 2 * n_src], f[:, columns]], axis=1)
    return x


__all__ = ["BASE_FEATURES", "FeatureSpec", "build_features"]
