"""The interaction log the batch path fits on: numpy columns, dense person and item indices.

Rows come from the store's ``interactions`` table (see ``training.reader``) or
from a test fixture; each row is one (event, product) pair. A *basket* groups
the rows that share a session (or, without a session, an event such as one
order), which is what "bought together" means for co-occurrence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt

# Event types the batch path learns from, in code order (index = code).
KINDS: tuple[str, ...] = ("product_view", "add_to_cart", "purchase", "rec_click")
KIND_CODE = {k: i for i, k in enumerate(KINDS)}
PURCHASE = KIND_CODE["purchase"]

Resolve = Callable[[str], str]
"""Maps any id an event carries (customer or anonymous) to the person it belongs to."""


def identity(any_id: str) -> str:
    return any_id


@dataclass(frozen=True)
class Row:
    """One (event, product) interaction as read from the store."""

    person: str
    item: str
    kind: str
    at: datetime
    basket: str
    quantity: float = 1.0
    price: float = float("nan")


@dataclass(frozen=True)
class InteractionLog:
    """Columns of equal length; ``people[person[r]]`` and ``items[item[r]]`` are external ids."""

    person: npt.NDArray[np.int64]
    item: npt.NDArray[np.int64]
    kind: npt.NDArray[np.int8]
    at: npt.NDArray[np.float64]  # unix seconds
    basket: npt.NDArray[np.int64]
    quantity: npt.NDArray[np.float64]
    price: npt.NDArray[np.float64]  # NaN when unknown
    people: tuple[str, ...]
    items: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.person)

    @property
    def n_people(self) -> int:
        return len(self.people)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def end(self) -> float:
        return float(self.at.max()) if len(self.at) else 0.0

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[Row],
        items: Sequence[str] = (),
        resolve: Resolve = identity,
    ) -> InteractionLog:
        """Build from rows; see :meth:`from_columns`."""
        rows = list(rows)
        return cls.from_columns(
            people=[r.person for r in rows],
            products=[r.item for r in rows],
            kinds=[r.kind for r in rows],
            at=np.array([r.at.timestamp() for r in rows], dtype=np.float64),
            baskets=[r.basket for r in rows],
            quantity=np.array([r.quantity for r in rows], dtype=np.float64),
            price=np.array([r.price for r in rows], dtype=np.float64),
            items=items,
            resolve=resolve,
        )

    @classmethod
    def from_columns(
        cls,
        *,
        people: Sequence[str],
        products: Sequence[str],
        kinds: Sequence[str],
        at: npt.NDArray[np.float64],
        baskets: Sequence[str],
        quantity: npt.NDArray[np.float64],
        price: npt.NDArray[np.float64],
        items: Sequence[str] = (),
        resolve: Resolve = identity,
    ) -> InteractionLog:
        """Build from equal-length columns; ``items`` fixes the item order (the catalog's).

        Rows whose event type is not learned from are dropped; products not in
        ``items`` are appended after them in order of appearance.
        """
        kind = np.array([KIND_CODE.get(k, -1) for k in kinds], dtype=np.int8)
        keep = kind >= 0
        item_index = {p: i for i, p in enumerate(items)}
        item_list = list(items)
        for p in products:
            if p not in item_index:
                item_index[p] = len(item_list)
                item_list.append(p)
        resolved: dict[str, str] = {}
        person_index: dict[str, int] = {}
        person = np.empty(len(people), dtype=np.int64)
        for r, raw in enumerate(people):
            if not keep[r]:
                continue
            who = resolved.get(raw)
            if who is None:
                who = resolved[raw] = resolve(raw)
            person[r] = person_index.setdefault(who, len(person_index))
        basket_index: dict[str, int] = {}
        basket = np.fromiter(
            (basket_index.setdefault(b, len(basket_index)) for b in baskets),
            dtype=np.int64,
            count=len(baskets),
        )
        item = np.fromiter((item_index[p] for p in products), dtype=np.int64, count=len(products))
        return cls(
            person=person[keep],
            item=item[keep],
            kind=kind[keep],
            at=np.asarray(at, dtype=np.float64)[keep],
            basket=basket[keep],
            quantity=np.asarray(quantity, dtype=np.float64)[keep],
            price=np.asarray(price, dtype=np.float64)[keep],
            people=tuple(person_index),
            items=tuple(item_list),
        )

    def select(self, mask: npt.NDArray[np.bool_]) -> InteractionLog:
        """The rows where ``mask`` holds, with the same vocabularies."""
        return InteractionLog(
            person=self.person[mask],
            item=self.item[mask],
            kind=self.kind[mask],
            at=self.at[mask],
            basket=self.basket[mask],
            quantity=self.quantity[mask],
            price=self.price[mask],
            people=self.people,
            items=self.items,
        )

    def before(self, t: float) -> InteractionLog:
        return self.select(self.at < t)

    def between(self, start: float, end: float) -> InteractionLog:
        return self.select((self.at >= start) & (self.at < end))

    def purchases(self) -> InteractionLog:
        return self.select(self.kind == PURCHASE)

    def item_prices(self) -> npt.NDArray[np.float64]:
        """The median known unit price of each item (NaN when never priced)."""
        out = np.full(self.n_items, np.nan)
        known = ~np.isnan(self.price)
        if not known.any():
            return out
        order = np.lexsort((self.price[known], self.item[known]))
        it = self.item[known][order]
        pr = self.price[known][order]
        starts = np.flatnonzero(np.r_[True, it[1:] != it[:-1]])
        ends = np.r_[starts[1:], len(it)]
        out[it[starts]] = pr[(starts + ends - 1) // 2]
        return out
