"""The catalog columns the ranker reads, as a protocol the live snapshot already satisfies.

``CatalogSnapshot`` (online) and ``ItemColumns`` (offline, built from a data set
without a database) expose the same arrays indexed by dense item index, so the
feature code cannot tell them apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

# Gross margin rate assumed per margin band (low, medium, high) when only the band is known.
MARGIN_RATE = np.array([0.15, 0.35, 0.55])


def reference_price(prices: npt.NDArray[np.float64] | float) -> float:
    """The unit of money: the median known price (positive and finite; the lower of
    the two middle ones, so it is one of the prices), 1 with none."""
    values = np.atleast_1d(np.asarray(prices, dtype=np.float64))
    with np.errstate(invalid="ignore"):
        known = values[np.isfinite(values) & (values > 0)]
    return float(np.quantile(known, 0.5, method="lower")) if len(known) else 1.0


class ItemTable(Protocol):
    price: npt.NDArray[np.float64]  # NaN = unknown
    stock: npt.NDArray[np.int64]  # -1 = unknown
    margin_band: npt.NDArray[np.int8]  # -1 = unknown, 0 low, 1 medium, 2 high
    sla_days: npt.NDArray[np.int16]  # -1 = unknown
    brand: npt.NDArray[np.int32]  # 0 = missing
    category: npt.NDArray[np.int32]  # 0 = missing


@dataclass
class ItemColumns:
    """A plain ``ItemTable`` for offline work and tests."""

    price: npt.NDArray[np.float64]
    stock: npt.NDArray[np.int64]
    margin_band: npt.NDArray[np.int8]
    sla_days: npt.NDArray[np.int16]
    brand: npt.NDArray[np.int32]
    category: npt.NDArray[np.int32]
    category_names: tuple[str, ...] = ("",)
    titles: tuple[str, ...] = ()

    @classmethod
    def unknown(cls, n: int, price: npt.ArrayLike | None = None) -> ItemColumns:
        """Items of which only (maybe) the price is known."""
        return cls(
            price=np.full(n, np.nan) if price is None else np.asarray(price, dtype=np.float64),
            stock=np.full(n, -1, dtype=np.int64),
            margin_band=np.full(n, -1, dtype=np.int8),
            sla_days=np.full(n, -1, dtype=np.int16),
            brand=np.zeros(n, dtype=np.int32),
            category=np.zeros(n, dtype=np.int32),
        )

    def __len__(self) -> int:
        return len(self.price)
