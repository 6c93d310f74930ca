"""The in-memory columnar catalog used on the request path.

One vocabulary owned by the catalog maps external product ids to dense indices
``0..n-1``; every per-item array downstream (neighbours, factors, masks) is
indexed the same way. Stock and price changes are pulled from the store's change
log (``product_changes.seq``), so a PATCH is visible on the next read of every
worker without reloading the whole catalog.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from shelfwise.catalog.model import MARGIN_BANDS, Product
from shelfwise.catalog.repository import CatalogRepository


@dataclass
class Codes:
    """A small string vocabulary for a categorical column (code 0 = missing)."""

    values: list[str] = field(default_factory=lambda: [""])
    index: dict[str, int] = field(default_factory=lambda: {"": 0})

    def code(self, value: str | None) -> int:
        if not value:
            return 0
        got = self.index.get(value)
        if got is None:
            got = self.index[value] = len(self.values)
            self.values.append(value)
        return got


_GROW = 1.5


class CatalogSnapshot:
    """Numpy columns over the catalog plus the product records, refreshed incrementally."""

    def __init__(self, repo: CatalogRepository, refresh_seconds: float = 0.0) -> None:
        self.repo = repo
        self.refresh_seconds = refresh_seconds
        self._lock = threading.Lock()
        self.ids: list[str] = []
        self.vocab: dict[str, int] = {}
        self.products: list[Product] = []
        self.brands = Codes()
        self.categories = Codes()
        self.variant_groups = Codes()
        self.price: npt.NDArray[np.float64] = np.zeros(0)
        self.stock: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)  # -1 = unknown
        self.available: npt.NDArray[np.bool_] = np.zeros(0, dtype=bool)
        self.margin_band: npt.NDArray[np.int8] = np.zeros(0, dtype=np.int8)  # -1 = unknown
        self.sla_days: npt.NDArray[np.int16] = np.zeros(0, dtype=np.int16)  # -1 = unknown
        self.brand: npt.NDArray[np.int32] = np.zeros(0, dtype=np.int32)
        self.category: npt.NDArray[np.int32] = np.zeros(0, dtype=np.int32)
        self.variant_group: npt.NDArray[np.int32] = np.zeros(0, dtype=np.int32)
        # Per product, the change sequence number that last touched it (0: as loaded):
        # what kept slates and candidates check their products against.
        self.changed_seq: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.seq = 0
        self.loaded_at = 0.0
        self.refreshed_at = 0.0
        self._checked_at = 0.0

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def age_seconds(self) -> float:
        """Seconds since the snapshot last confirmed it is current."""
        return time.time() - self.refreshed_at if self.refreshed_at else float("inf")

    def load(self) -> None:
        """Read the whole catalog (start-up)."""
        with self._lock:
            seq = self.repo.last_change_seq()
            self._reset()
            self._apply(list(self.repo.iter_all()))
            self.seq = seq
            self.loaded_at = self.refreshed_at = time.time()

    def refresh(self, force: bool = False) -> int:
        """Apply catalog changes made since the last read; returns how many products changed."""
        now = time.time()
        if not force and self.refresh_seconds and now - self._checked_at < self.refresh_seconds:
            return 0
        with self._lock:
            self._checked_at = now
            seq, changed = self.repo.changed_since(self.seq)
            if changed:
                self._apply(self.repo.get_many(changed))
                touched = [self.vocab[p] for p in changed if p in self.vocab]
                self.changed_seq[np.array(touched, dtype=np.int64)] = seq
            self.seq = seq
            self.refreshed_at = time.time()
            return len(changed)

    def index_of(self, product_id: str) -> int | None:
        return self.vocab.get(product_id)

    def indices(self, product_ids: Iterable[str]) -> npt.NDArray[np.int64]:
        """Dense indices of the known ids (unknown ids are skipped)."""
        vocab = self.vocab
        return np.fromiter((vocab[p] for p in product_ids if p in vocab), dtype=np.int64)

    def product(self, index: int) -> Product:
        return self.products[index]

    def _reset(self) -> None:
        self.ids, self.vocab, self.products = [], {}, []
        self.brands, self.categories, self.variant_groups = Codes(), Codes(), Codes()
        for name in (
            "price",
            "stock",
            "available",
            "margin_band",
            "sla_days",
            "brand",
            "category",
            "variant_group",
            "changed_seq",
        ):
            arr = getattr(self, name)
            setattr(self, name, arr[:0].copy())

    def _ensure_capacity(self, n: int) -> None:
        cap = len(self.price)
        if n <= cap:
            return
        new_cap = max(n, int(cap * _GROW) + 16)
        for name, fill in (
            ("price", np.nan),
            ("stock", -1),
            ("available", False),
            ("margin_band", -1),
            ("sla_days", -1),
            ("brand", 0),
            ("category", 0),
            ("variant_group", 0),
            ("changed_seq", 0),
        ):
            old = getattr(self, name)
            grown = np.full(new_cap, fill, dtype=old.dtype)
            grown[:cap] = old
            setattr(self, name, grown)

    def _apply(self, items: Sequence[Product]) -> None:
        new = [p for p in items if p.product_id not in self.vocab]
        self._ensure_capacity(len(self.ids) + len(new))
        for p in new:
            self.vocab[p.product_id] = len(self.ids)
            self.ids.append(p.product_id)
            self.products.append(p)
        for p in items:
            i = self.vocab[p.product_id]
            self.products[i] = p
            self.price[i] = p.price if p.price is not None else np.nan
            self.stock[i] = p.stock_qty if p.stock_qty is not None else -1
            self.available[i] = p.is_available
            self.margin_band[i] = MARGIN_BANDS.index(p.margin_band) if p.margin_band else -1
            self.sla_days[i] = p.shipping_sla_days if p.shipping_sla_days is not None else -1
            self.brand[i] = self.brands.code(p.brand)
            self.category[i] = self.categories.code(p.category_path)
            self.variant_group[i] = self.variant_groups.code(p.variant_group)

    def column(self, name: str) -> npt.NDArray[np.generic]:
        """A column trimmed to the live items (arrays carry spare capacity)."""
        arr: npt.NDArray[np.generic] = getattr(self, name)
        return arr[: len(self.ids)]
