"""A catalog snapshot without a store: a fixed list of products, in a given order.

Offline work (evaluation, the notebook, the promotion guard) runs the request
pipeline over the items of an interaction log; the snapshot's dense indices
must then be the log's. :func:`snapshot_of_items` makes that snapshot, taking
what the catalog knows of each item and a bare product (its id as the title,
stock unknown, so available) for the rest.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import cast

from shelfwise.catalog.model import Product
from shelfwise.catalog.repository import CatalogRepository
from shelfwise.catalog.snapshot import CatalogSnapshot


class StaticCatalog:
    """Just what :class:`CatalogSnapshot` reads of a repository, over a fixed list."""

    def __init__(self, products: Sequence[Product]) -> None:
        self.products = list(products)
        self._by_id = {p.product_id: p for p in self.products}

    def last_change_seq(self) -> int:
        return 0

    def iter_all(self) -> Iterator[Product]:
        return iter(self.products)

    def changed_since(self, seq: int) -> tuple[int, list[str]]:
        return seq, []

    def get_many(self, ids: Sequence[str]) -> list[Product]:
        return [self._by_id[i] for i in ids if i in self._by_id]


def snapshot_of_items(
    items: Sequence[str], products: Sequence[Product | None] = ()
) -> CatalogSnapshot:
    """A loaded snapshot whose index ``i`` is ``items[i]`` (``products[i]`` when known)."""
    known = {p.product_id: p for p in products if p is not None}
    listed = [known.get(i) or Product(product_id=i, title=i) for i in items]
    snapshot = CatalogSnapshot(cast(CatalogRepository, StaticCatalog(listed)))
    snapshot.load()
    return snapshot
