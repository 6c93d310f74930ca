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
from shelfwise.ranking.items import ItemTable

DAY = 86_400
N_PRICE_BANDS = 5
WEEKS = 52
_SEASON_PRIOR = 20.0  # pseudo-events that pull a sparse category-week towards 1.0


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
    ref_price: float  # median catalog price, the unit of money in the value term
    person_items: PairTable  # columns: purchases, last purchase at, last seen at, events
    person_categories: PairTable  # column: share of the person's weighted events
    person_brands: PairTable
    person_bands: FloatArray  # (persons, N_PRICE_BANDS) share of purchases per price band
    person_spend: FloatArray  # geometric mean unit price of purchases (NaN = none)
    person_activity: FloatArray  # purchases
    person_last_at: IntArray  # last event, -1 = never

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
        ref_price = float(np.median(prices)) if len(prices) else 1.0

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
        person_items = PairTable(
            indptr, keys, np.column_stack([purchases, last_buy, last_seen, events]).astype(float)
        )
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
            person_items=person_items,
            person_categories=person_categories,
            person_brands=person_brands,
            person_bands=bands / np.maximum(bands.sum(1, keepdims=True), 1),
            person_spend=spend,
            person_activity=np.bincount(buy_p, minlength=n_persons).astype(np.float64),
            person_last_at=last_at,
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
            if f"{f.name}.indptr" in arrays:
                kwargs[f.name] = PairTable(
                    *(arrays[f"{f.name}.{part}"] for part in ("indptr", "keys", "values"))
                )
            else:
                kwargs[f.name] = arrays[f.name]
        return cls(**kwargs)  # type: ignore[arg-type]
