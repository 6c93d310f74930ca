"""Predicates compiled to numpy boolean masks over the whole catalog snapshot.

A rule's mask is computed once per (rulebook, snapshot state) and then costs one
fancy index per request (``mask[items]``). Column attributes (price, stock,
margin band, SLA, availability) are vectorised; coded columns (brand, category,
variant group) go through a lookup table over their small vocabulary; tags,
``product_id`` and feed attributes are interpreted per product once, and only
for the products that changed since the last sync (snapshot entries are
replaced, never mutated, so identity tells what changed).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from shelfwise.catalog import CatalogSnapshot
from shelfwise.catalog.model import MARGIN_BANDS
from shelfwise.rules.predicate import (
    CODED,
    SETS,
    And,
    Cmp,
    Not,
    Or,
    Predicate,
    compare,
    normalise_value,
    product_value,
)

BoolArray = npt.NDArray[np.bool_]

_COLUMN = {"price": "price", "stock": "stock", "sla_days": "sla_days", "margin_band": "margin_band"}
_CODES = {"brand": "brands", "category": "categories", "variant_group": "variant_groups"}


class CatalogMasks:
    """Evaluates predicates over every product of a snapshot, caching per-product leaves."""

    def __init__(self, snapshot: CatalogSnapshot) -> None:
        self.snapshot = snapshot
        self._state: tuple[int, int, int] = (-1, -1, -1)
        self._seen: list[Any] = []
        self._slow: dict[str, BoolArray] = {}  # per-product leaves, by their JSON key
        self._lock = threading.Lock()

    @property
    def n(self) -> int:
        return len(self.snapshot)

    @property
    def state(self) -> tuple[int, int, int]:
        return self._state

    def sync(self) -> bool:
        """Bring cached leaves up to date with the snapshot; True when the snapshot changed."""
        with self._lock:
            return self._sync()

    def _sync(self) -> bool:
        snap = self.snapshot
        state = (id(snap.products), len(snap), snap.seq)
        if state == self._state:
            return False
        products = snap.products
        n = len(products)
        if state[0] != self._state[0] or n < len(self._seen):
            changed = list(range(n))
        else:
            seen = self._seen
            changed = [i for i in range(len(seen)) if products[i] is not seen[i]]
            changed.extend(range(len(seen), n))
        for key, arr in list(self._slow.items()):
            if len(arr) != n:
                grown = np.zeros(n, dtype=bool)
                grown[: min(n, len(arr))] = arr[:n]
                arr = self._slow[key] = grown
            cmp = Cmp.model_validate_json(key)
            for i in changed:
                arr[i] = compare(cmp, product_value(products[i], cmp.attr))
        self._seen = list(products)
        self._state = state
        return True

    def mask(self, pred: Predicate) -> BoolArray:
        """The predicate over every product (call :meth:`sync` first)."""
        if isinstance(pred, Cmp):
            return self._leaf(pred)
        if isinstance(pred, And):
            out = self.mask(pred.and_[0]).copy()
            for p in pred.and_[1:]:
                out &= self.mask(p)
            return out
        if isinstance(pred, Or):
            out = self.mask(pred.or_[0]).copy()
            for p in pred.or_[1:]:
                out |= self.mask(p)
            return out
        assert isinstance(pred, Not)
        return ~self.mask(pred.not_)

    def codes_lut(self, attr: str, cmp: Cmp) -> BoolArray:
        """For a coded column: which codes of its vocabulary satisfy ``cmp``."""
        codes = getattr(self.snapshot, _CODES[attr])
        values = [v.lower() if (attr == "brand" and v) else v for v in codes.values]
        return np.fromiter((compare(cmp, v or None) for v in values), dtype=bool, count=len(values))

    def _leaf(self, cmp: Cmp) -> BoolArray:
        snap, n, attr = self.snapshot, self.n, cmp.attr
        if attr in CODED:
            lut = self.codes_lut(attr, cmp)
            coded: BoolArray = lut[snap.column(attr)]
            return coded
        if attr == "available":
            col = snap.column("available").astype(bool)
            values = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
            same: BoolArray = np.isin(col, [bool(v) for v in values])
            return same if cmp.op in ("eq", "in") else ~same
        if attr in _COLUMN:
            return self._numeric(cmp, snap.column(_COLUMN[attr]).astype(np.float64))
        if attr in SETS or attr == "product_id" or attr.startswith("attributes."):
            key = cmp.model_dump_json()
            arr = self._slow.get(key)
            if arr is None or len(arr) != n:
                products = snap.products
                arr = np.fromiter(
                    (compare(cmp, product_value(products[i], attr)) for i in range(n)),
                    dtype=bool,
                    count=n,
                )
                self._slow[key] = arr
            return arr
        raise AssertionError(f"unhandled attribute {attr}")  # pragma: no cover

    def _numeric(self, cmp: Cmp, col: npt.NDArray[np.float64]) -> BoolArray:
        missing = np.isnan(col) if cmp.attr == "price" else col < 0
        values = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
        if cmp.attr == "margin_band":
            wanted = [float(MARGIN_BANDS.index(str(v))) for v in values]
        else:
            wanted = [float(normalise_value(cmp.attr, v)) for v in values]
        op = cmp.op
        with np.errstate(invalid="ignore"):
            if op in ("eq", "in", "ne", "not_in"):
                hit = np.isin(col, wanted) & ~missing
                return ~hit if op in ("ne", "not_in") else hit
            w = wanted[0]
            out = {"lt": col < w, "le": col <= w, "gt": col > w, "ge": col >= w}.get(op)
        if out is None:
            return np.zeros(self.n, dtype=bool)  # prefix on a number: never
        return out & ~missing
