"""The behaviour log the ranker learns from and looks up: numpy columns sorted by time.

Items are dense catalog indices; people are dense indices into ``persons``.
Times are integer epoch seconds (UTC), so "as of t" is one ``searchsorted``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from shelfwise.candidates.log import InteractionLog

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
KindArray = npt.NDArray[np.int8]

KINDS: tuple[str, ...] = ("view", "cart", "purchase", "impression", "click")
VIEW, CART, PURCHASE, IMPRESSION, CLICK = range(5)
# How much an event says about interest, for popularity and affinity counts.
KIND_WEIGHT = np.array([0.2, 0.5, 1.0, 0.0, 0.3])
# Graded relevance of a label window: purchase > add-to-cart > click > view.
KIND_GRADE = np.array([1, 2, 3, 0, 1], dtype=np.int64)

EVENT_KIND = {
    "product_view": VIEW,
    "add_to_cart": CART,
    "purchase": PURCHASE,
    "rec_impression": IMPRESSION,
    "rec_click": CLICK,
}


def epoch(at: datetime) -> int:
    """Aware datetime -> integer epoch seconds (naive values are taken as UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return int(at.timestamp())


@dataclass(frozen=True)
class HistoryLog:
    """Events as parallel arrays, oldest first."""

    person: IntArray
    item: IntArray
    kind: KindArray
    at: IntArray
    price: FloatArray
    quantity: FloatArray
    persons: tuple[str, ...]
    _index: dict[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        n = len(self.item)
        for name in ("person", "kind", "at", "price", "quantity"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"column {name} has {len(getattr(self, name))} rows, not {n}")
        if n > 1 and bool(np.any(np.diff(self.at) < 0)):
            raise ValueError("a HistoryLog must be sorted by time")
        if not self._index:
            self._index.update({p: i for i, p in enumerate(self.persons)})

    def __len__(self) -> int:
        return len(self.item)

    @classmethod
    def build(
        cls,
        persons: Sequence[str],
        person: Sequence[int] | IntArray,
        item: Sequence[int] | IntArray,
        kind: Sequence[int] | npt.NDArray[np.integer],
        at: Sequence[int] | IntArray,
        price: Sequence[float] | FloatArray | None = None,
        quantity: Sequence[float] | FloatArray | None = None,
    ) -> HistoryLog:
        """Columns in any order; sorted here (stable, so ties keep their order)."""
        at_arr = np.asarray(at, dtype=np.int64)
        order = np.argsort(at_arr, kind="stable")
        n = len(at_arr)
        price_arr = np.full(n, np.nan) if price is None else np.asarray(price, dtype=np.float64)
        qty_arr = np.ones(n) if quantity is None else np.asarray(quantity, dtype=np.float64)
        return cls(
            person=np.asarray(person, dtype=np.int64)[order],
            item=np.asarray(item, dtype=np.int64)[order],
            kind=np.asarray(kind, dtype=np.int8)[order],
            at=at_arr[order],
            price=price_arr[order],
            quantity=qty_arr[order],
            persons=tuple(persons),
        )

    def person_index(self, person_id: str | None) -> int | None:
        return None if person_id is None else self._index.get(person_id)

    def _slice(self, lo: int, hi: int) -> HistoryLog:
        return HistoryLog(
            person=self.person[lo:hi],
            item=self.item[lo:hi],
            kind=self.kind[lo:hi],
            at=self.at[lo:hi],
            price=self.price[lo:hi],
            quantity=self.quantity[lo:hi],
            persons=self.persons,
            _index=self._index,
        )

    def before(self, t: int) -> HistoryLog:
        """Events strictly before ``t`` (epoch seconds)."""
        return self._slice(0, int(np.searchsorted(self.at, t, side="left")))

    def window(self, start: int, end: int) -> HistoryLog:
        """Events in ``[start, end)``."""
        lo = int(np.searchsorted(self.at, start, side="left"))
        hi = int(np.searchsorted(self.at, end, side="left"))
        return self._slice(lo, hi)


# The batch path's interaction log codes its kinds as candidates.log.KINDS.
_FROM_INTERACTION_KIND = np.array([VIEW, CART, PURCHASE, CLICK], dtype=np.int8)


def from_interactions(log: InteractionLog) -> HistoryLog:
    """The ranker's view of the batch path's ``InteractionLog`` (same people and items)."""
    return HistoryLog.build(
        log.people,
        log.person,
        log.item,
        _FROM_INTERACTION_KIND[log.kind],
        np.floor(log.at).astype(np.int64),
        price=log.price,
        quantity=log.quantity,
    )
