"""Durable, batch-computed tables the features read: fitted on the history before ``as_of``.

Everything here is a pure function of (log before ``as_of``, catalog columns),
so a training row built "as of t" and a served request at t read the same
numbers. Per-person tables are CSR-like: rows sorted by (person, key), so one
``searchsorted`` looks up every candidate of a request at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import numpy.typing as npt

from shelfwise.ranking.history import (
    CART,
    CLICK,
    IMPRESSION,
    KIND_WEIGHT,
    PURCHASE,
    VIEW,
    FloatArray,
    HistoryLog,
    IntArray,
)
from shelfwise.ranking.items import ItemTable, reference_price

DAY = 86_400
N_PRICE_BANDS = 5
WEEKS = 52
_SEASON_PRIOR = 20.0  # pseudo-events that pull a sparse category-week towards 1.0


LINE_PRIOR = 5.0  # lines' worth of the store's typical line in an item's ``line_units``

# Per-item arrays added to the state after bundles were already written: a state saved
# before one of them loads with it at zero (only features of the newer models read
# it), or at the value named in _LATER_DEFAULT (``line_units`` 1: a purchase is worth
# its price, as the value was then).
LATER_ITEM_ARRAYS = frozenset({"rebuy_28d", "line_units"})
_LATER_DEFAULT = {"line_units": 1.0}


@dataclass
class PairTable:
    """Rows of (person, key) sorted, with ``indptr`` per person and value columns."""

    indptr: IntArray
    keys: IntArray
    values: FloatArray  # (rows, columns)

    def row(self, person: int | None) -> tuple[IntArray, FloatArray]:
        if person is None or person + 1 >= len(self.indptr):
            return self.keys[:0], self.values[:0]
        lo, hi = self.indptr[person], self.indptr[person + 1]
        return self.keys[lo:hi], self.values[lo:hi]

    def lookup(self, person: int | None, keys: IntArray, fill: float) -> FloatArray:
        """Values for ``keys`` in one person's row (``fill`` where absent), shape (n, columns)."""
        row_keys, row_values = self.row(person)
        out = np.full((len(keys), self.values.shape[1]), fill)
        if len(row_keys):
            pos = np.minimum(np.searchsorted(row_keys, keys), len(row_keys) - 1)
            hit = row_keys[pos] == keys
            out[hit] = row_values[pos[hit]]
        return out


def week_of(t: IntArray | int) -> IntArray:
    """A stable week-of-year index (0..51) from epoch seconds."""
    return np.asarray(((np.asarray(t, dtype=np.int64) // DAY + 3) // 7) % 52, dtype=np.int64)


def _pairs(
    n_persons: int, person: IntArray, key: IntArray, n_keys: int
) -> tuple[IntArray, IntArray, IntArray]:
    """Group (person, key) pairs; returns indptr, keys, and the inverse index of each event."""
    code = person * np.int64(max(n_keys, 1)) + key
    uniq, inverse = np.unique(code, return_inverse=True)
    persons = uniq // max(n_keys, 1)
    indptr = np.searchsorted(persons, np.arange(n_persons + 1)).astype(np.int64)
    return indptr, (uniq % max(n_keys, 1)).astype(np.int64), inverse.astype(np.int64)


def _weighted_share(
    n_persons: int, person: IntArray, key: IntArray, n_keys: int, weight: FloatArray
) -> PairTable:
    indptr, keys, inverse = _pairs(n_persons, person, key, n_keys)
    sums = np.bincount(inverse, weights=weight, minlength=len(keys))
    totals = np.bincount(person, weights=weight, minlength=n_persons)
    owner = np.repeat(np.arange(n_persons), np.diff(indptr))
    share = sums / np.maximum(totals[owner], 1e-12)
    return PairTable(indptr, keys, share[:, None])


def _line_units(
    item: IntArray, paid: FloatArray, quantity: FloatArray, price: FloatArray
) -> FloatArray:
    """Per item, how many of its catalog price one purchase line of it brings: the
    geometric mean over its lines of the price paid times the units, over the item's
    catalog price, relative to the store's typical line (the median of the items'
    own). A wholesaler's carton of 44 gliders and a single cushion cover are one
    purchase each, not one unit each; and where the catalog's price is not what
    buyers paid (Online Retail's latest price is often a retail customer's, above the
    trade price), the line is what it brought. 1 where the item was never bought with
    a known price and quantity, where its catalog price is unknown, and everywhere in
    a store that sells one unit a line at its catalog price; an item's own figure is
    shrunk towards the typical line with ``LINE_PRIOR`` lines' worth."""
    n_items = len(price)
    listed = np.isfinite(price) & (price > 0)
    paid = np.where(np.isfinite(paid) & (paid > 0), paid, price[item])
    known = np.isfinite(paid) & (paid > 0) & np.isfinite(quantity) & (quantity > 0)
    known &= listed[item]
    if not known.any():
        return np.ones(n_items)
    lines = np.bincount(item[known], minlength=n_items)
    logs = np.bincount(
        item[known], weights=np.log(paid[known] * quantity[known]), minlength=n_items
    )
    has = lines > 0
    own = logs[has] / lines[has] - np.log(price[has])
    typical = float(np.median(own))
    # shrunk towards the typical line with LINE_PRIOR lines' worth: a single line of two
    # units in a shop that sells one or two says little about the item
    own = (lines[has] * own + LINE_PRIOR * typical) / (lines[has] + LINE_PRIOR)
    out = np.ones(n_items)
    out[has] = np.exp(own - typical)
    return out


def _item_repeat_stats(
    keys: IntArray,
    first_buy: IntArray,
    last_buy: IntArray,
    buy_days: FloatArray,
    n_items: int,
    as_of: int,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    """Per item from its (person, item) pairs: new buyers of the last 7 / 28 days, the
    share of buyers who came back on another day, the typical days between returns, and
    the share of its buyers from before the last 28 days who bought it in them."""
    bought = first_buy >= 0
    item = keys[bought]
    new7 = np.bincount(item, weights=first_buy[bought] >= as_of - 7 * DAY, minlength=n_items)
    new28 = np.bincount(item, weights=first_buy[bought] >= as_of - 28 * DAY, minlength=n_items)
    buyers = np.bincount(item, minlength=n_items).astype(np.float64)
    again = buy_days[bought] >= 2
    repeaters = np.bincount(item, weights=again, minlength=n_items)
    prior = repeaters.sum() / max(buyers.sum(), 1.0)
    repeat_rate = (repeaters + 5.0 * prior) / (buyers + 5.0)
    days = buy_days[bought][again]
    gap = (last_buy[bought][again] - first_buy[bought][again]) / DAY / np.maximum(days - 1, 1)
    log_gap = np.log(np.maximum(gap, 1.0))
    n_rep = np.bincount(item[again], minlength=n_items)
    mean_log = np.bincount(item[again], weights=log_gap, minlength=n_items)
    overall = float(log_gap.mean()) if len(log_gap) else np.log(30.0)
    cycle = np.exp((mean_log + 3.0 * overall) / (n_rep + 3.0))
    # Returning now: of the people who had bought the item before the last 28 days, the
    # share who bought it again in them (smoothed towards the store's share). It moves
    # with the season and the item's life, where the all-time repeat rate does not.
    before = bought & (first_buy < as_of - 28 * DAY)
    earlier = np.bincount(keys[before], minlength=n_items).astype(np.float64)
    back = np.bincount(
        keys[before], weights=last_buy[before] >= as_of - 28 * DAY, minlength=n_items
    )
    store = back.sum() / max(earlier.sum(), 1.0)
    rebuy = (back + 5.0 * store) / (earlier + 5.0)
    return (
        new7.astype(np.float64),
        new28.astype(np.float64),
        repeat_rate.astype(np.float64),
        cycle.astype(np.float64),
        rebuy.astype(np.float64),
    )


@dataclass
class RankingState:
    """Tables as of ``as_of`` (epoch seconds); see docs/ranking.md for each one's meaning."""

    as_of: int
    persons: tuple[str, ...]
    pop_7d: FloatArray  # weighted events per item, last 7 days
    pop_28d: FloatArray
    daily_sales: FloatArray  # units per day over the last 28 days
    exposures: FloatArray  # recommendation impressions per item
    clicks: FloatArray
    season: FloatArray  # (categories, 52) index of a category in a week of the year, 1.0 = usual
    price_edges: FloatArray  # N_PRICE_BANDS - 1 quantiles of catalog prices
    ref_price: float  # median known catalog price (1 with none), the unit of money in the value
    item_first_at: IntArray  # first event of the item, -1 = never
    new_buyers_7d: FloatArray  # people whose first purchase of the item is in the last 7 days
    new_buyers_28d: FloatArray
    repeat_rate: FloatArray  # share of the item's buyers who bought it on 2+ days (smoothed)
    item_cycle_days: FloatArray  # geometric mean days between repeat purchases of the item
    rebuy_28d: FloatArray  # share of the item's earlier buyers who bought it in the last 28 days
    line_units: FloatArray  # catalog prices one purchase line of the item brings, over the typical
    person_items: PairTable  # columns: purchases, last purchase at, last seen at, events,
    # first purchase at, days with a purchase
    person_categories: PairTable  # column: share of the person's weighted events
    person_brands: PairTable
    person_bands: FloatArray  # (persons, N_PRICE_BANDS) share of purchases per price band
    person_spend: FloatArray  # geometric mean unit price of purchases (NaN = none)
    person_activity: FloatArray  # purchases
    person_last_at: IntArray  # last event, -1 = never
    person_order_days: FloatArray  # days with a purchase
    person_gap_days: FloatArray  # mean days between purchase days (NaN = under two)
    person_new_share: FloatArray  # share of the person's purchases that were first-time items

    def person(self, person_id: str | None) -> int | None:
        if person_id is None:
            return None
        if not hasattr(self, "_index"):
            self._index = {p: i for i, p in enumerate(self.persons)}
        return self._index.get(person_id)

    def price_band(self, price: FloatArray) -> IntArray:
        return np.searchsorted(self.price_edges, price, side="right").astype(np.int64)

    @classmethod
    def fit(cls, log: HistoryLog, items: ItemTable, as_of: int) -> RankingState:
        h = log.before(as_of)
        n_items, n_persons = len(items.price), len(log.persons)
        n_cats = int(items.category.max(initial=0)) + 1
        n_brands = int(items.brand.max(initial=0)) + 1
        engage = np.isin(h.kind, (VIEW, CART, PURCHASE))
        w = KIND_WEIGHT[h.kind]
        recent7, recent28 = h.at >= as_of - 7 * DAY, h.at >= as_of - 28 * DAY
        pop7 = np.bincount(h.item, weights=w * recent7, minlength=n_items)
        pop28 = np.bincount(h.item, weights=w * recent28, minlength=n_items)
        bought = h.kind == PURCHASE
        sales = np.bincount(h.item, weights=h.quantity * (bought & recent28), minlength=n_items)
        line_units = _line_units(
            h.item[bought], h.price[bought], h.quantity[bought], np.asarray(items.price, float)
        )
        exposures = np.bincount(h.item, weights=h.kind == IMPRESSION, minlength=n_items)
        clicks = np.bincount(h.item, weights=h.kind == CLICK, minlength=n_items)

        cat = items.category[h.item].astype(np.int64)
        week = week_of(h.at)
        counts = np.bincount(cat * WEEKS + week, weights=w, minlength=n_cats * WEEKS)
        counts = counts.reshape(n_cats, WEEKS)
        total = counts.sum()
        cat_share = counts.sum(1, keepdims=True) / max(total, 1e-12)
        week_total = counts.sum(0, keepdims=True)
        season = (counts + _SEASON_PRIOR * cat_share) / (
            (week_total + _SEASON_PRIOR) * np.maximum(cat_share, 1e-12)
        )

        prices = items.price[np.isfinite(items.price)]
        edges = (
            np.quantile(prices, np.linspace(0, 1, N_PRICE_BANDS + 1)[1:-1])
            if len(prices)
            else np.zeros(N_PRICE_BANDS - 1)
        )
        ref_price = reference_price(prices)

        p, it = h.person[engage], h.item[engage]
        at, kind, wt = h.at[engage], h.kind[engage], w[engage]
        indptr, keys, inv = _pairs(n_persons, p, it, n_items)
        n_pairs = len(keys)
        purchases = np.bincount(inv, weights=kind == PURCHASE, minlength=n_pairs)
        last_buy = np.full(n_pairs, -1, dtype=np.int64)
        np.maximum.at(last_buy, inv[kind == PURCHASE], at[kind == PURCHASE])
        last_seen = np.full(n_pairs, -1, dtype=np.int64)
        np.maximum.at(last_seen, inv, at)
        events = np.bincount(inv, minlength=n_pairs).astype(np.float64)
        buy = kind == PURCHASE
        first_buy = np.full(n_pairs, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(first_buy, inv[buy], at[buy])
        first_buy[first_buy == np.iinfo(np.int64).max] = -1
        pair_day = np.unique(inv[buy] * np.int64(100_000) + at[buy] // DAY)
        buy_days = np.bincount(pair_day // 100_000, minlength=n_pairs).astype(np.float64)
        person_items = PairTable(
            indptr,
            keys,
            np.column_stack([purchases, last_buy, last_seen, events, first_buy, buy_days]).astype(
                float
            ),
        )
        item_stats = _item_repeat_stats(keys, first_buy, last_buy, buy_days, n_items, as_of)
        item_first_at = np.full(n_items, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(item_first_at, h.item, h.at)
        item_first_at[item_first_at == np.iinfo(np.int64).max] = -1
        person_categories = _weighted_share(
            n_persons, p, items.category[it].astype(np.int64), n_cats, wt
        )
        person_brands = _weighted_share(
            n_persons, p, items.brand[it].astype(np.int64), n_brands, wt
        )

        buy_p, buy_price = h.person[bought], items.price[h.item[bought]]
        buy_price = np.where(np.isfinite(h.price[bought]), h.price[bought], buy_price)
        known = np.isfinite(buy_price) & (buy_price > 0)
        band = np.searchsorted(edges, buy_price[known], side="right")
        bands = np.bincount(
            buy_p[known] * N_PRICE_BANDS + band, minlength=n_persons * N_PRICE_BANDS
        ).reshape(n_persons, N_PRICE_BANDS)
        n_known = np.bincount(buy_p[known], minlength=n_persons)
        log_sum = np.bincount(buy_p[known], weights=np.log(buy_price[known]), minlength=n_persons)
        with np.errstate(invalid="ignore", divide="ignore"):
            spend = np.where(n_known > 0, np.exp(log_sum / np.maximum(n_known, 1)), np.nan)
        last_at = np.full(n_persons, -1, dtype=np.int64)
        np.maximum.at(last_at, p, at)
        order_days = np.unique(buy_p * np.int64(100_000) + h.at[bought] // DAY)
        owner = order_days // 100_000
        n_days = np.bincount(owner, minlength=n_persons).astype(np.float64)
        first_day = np.full(n_persons, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(first_day, owner, order_days % 100_000)
        last_day = np.full(n_persons, -1, dtype=np.int64)
        np.maximum.at(last_day, owner, order_days % 100_000)
        with np.errstate(invalid="ignore", divide="ignore"):
            gap = np.where(n_days >= 2, (last_day - first_day) / np.maximum(n_days - 1, 1), np.nan)
        pair_owner = np.repeat(np.arange(n_persons), np.diff(indptr))
        first_items = np.bincount(pair_owner, weights=first_buy >= 0, minlength=n_persons)
        n_buys = np.bincount(buy_p, minlength=n_persons).astype(np.float64)
        new_share = np.where(n_buys > 0, first_items / np.maximum(n_buys, 1), np.nan)
        return cls(
            as_of=as_of,
            persons=log.persons,
            pop_7d=pop7.astype(np.float64),
            pop_28d=pop28.astype(np.float64),
            daily_sales=sales / 28.0,
            exposures=exposures.astype(np.float64),
            clicks=clicks.astype(np.float64),
            season=season,
            price_edges=edges,
            ref_price=ref_price,
            item_first_at=item_first_at,
            new_buyers_7d=item_stats[0],
            new_buyers_28d=item_stats[1],
            repeat_rate=item_stats[2],
            item_cycle_days=item_stats[3],
            rebuy_28d=item_stats[4],
            line_units=line_units,
            person_items=person_items,
            person_categories=person_categories,
            person_brands=person_brands,
            person_bands=bands / np.maximum(bands.sum(1, keepdims=True), 1),
            person_spend=spend,
            person_activity=np.bincount(buy_p, minlength=n_persons).astype(np.float64),
            person_last_at=last_at,
            person_order_days=n_days,
            person_gap_days=gap.astype(np.float64),
            person_new_share=new_share.astype(np.float64),
        )

    def save(self, folder: Path) -> None:
        """Arrays to ``state.npz``, the rest to ``state.json`` (inside a model bundle)."""
        folder.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, npt.NDArray[np.generic]] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, PairTable):
                for part in ("indptr", "keys", "values"):
                    arrays[f"{f.name}.{part}"] = getattr(value, part)
            elif isinstance(value, np.ndarray):
                arrays[f.name] = value
        np.savez(folder / "state.npz", **arrays)  # type: ignore[arg-type]
        meta = {"as_of": self.as_of, "ref_price": self.ref_price, "persons": list(self.persons)}
        (folder / "state.json").write_text(json.dumps(meta))

    @classmethod
    def load(cls, folder: Path) -> RankingState:
        meta = json.loads((folder / "state.json").read_text())
        with np.load(folder / "state.npz") as data:
            arrays = {k: data[k] for k in data.files}
        kwargs: dict[str, object] = {
            "as_of": int(meta["as_of"]),
            "ref_price": float(meta["ref_price"]),
            "persons": tuple(meta["persons"]),
        }
        for f in fields(cls):
            if f.name in kwargs:
                continue
            if f.name in LATER_ITEM_ARRAYS and f.name not in arrays:
                # saved by an earlier version, for a model that does not read it
                # (``FeatureSpec.base``: a model reading it was saved with it)
                fill = _LATER_DEFAULT.get(f.name, 0.0)
                arrays[f.name] = np.full(len(arrays["pop_7d"]), fill, dtype=np.float64)
            if f"{f.name}.indptr" not in arrays and f.name not in arrays:
                raise ValueError(f"the ranker state has no {f.name} (saved before it): retrain")
            if f"{f.name}.indptr" in arrays:
                kwargs[f.name] = PairTable(
                    *(arrays[f"{f.name}.{part}"] for part in ("indptr", "keys", "values"))
                )
            else:
                kwargs[f.name] = arrays[f.name]
        return cls(**kwargs)  # type: ignore[arg-type]
