"""A tiny in-memory catalog for rule tests: a snapshot without a database."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from shelfwise.candidates.base import RecContext
from shelfwise.catalog import CatalogSnapshot, Product

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class MemoryCatalog:
    """Just enough of CatalogRepository for CatalogSnapshot.load/refresh."""

    def __init__(self, products: Sequence[Product]) -> None:
        self.products = {p.product_id: p for p in products}
        self.changes: list[str] = []

    def last_change_seq(self) -> int:
        return len(self.changes)

    def iter_all(self) -> Iterator[Product]:
        return iter(self.products.values())

    def changed_since(self, seq: int) -> tuple[int, list[str]]:
        return len(self.changes), sorted(set(self.changes[seq:]))

    def get_many(self, ids: Sequence[str]) -> list[Product]:
        return [self.products[i] for i in ids]

    def put(self, product: Product) -> None:
        self.products[product.product_id] = product
        self.changes.append(product.product_id)


def product(pid: str, **kw: Any) -> Product:
    base: dict[str, Any] = {
        "product_id": pid,
        "title": f"Item {pid}",
        "price": 10.0,
        "stock_qty": 5,
    }
    base.update(kw)
    return Product.model_validate(base)


def snapshot_of(products: Sequence[Product]) -> CatalogSnapshot:
    snap = CatalogSnapshot(MemoryCatalog(products))  # type: ignore[arg-type]
    snap.load()
    return snap


def ctx(placement: str = "product_page", **kw: Any) -> RecContext:
    kw.setdefault("now", NOW)
    return RecContext(placement=placement, **kw)


# A small home-goods store whose right answers are written out in the tests.
STORE = [
    product("lamp", brand="Lumo", category_path="decor/premium/lighting", price=200.0, cost=80.0),
    product("vase", brand="Lumo", category_path="decor/premium/vases", price=120.0, cost=100.0),
    product(
        "fuse", brand="Volt", category_path="decor/parts", price=4.0, tags=["replacement-part"]
    ),
    product("hook", brand="Volt", category_path="home/utility", price=6.0, tags=["utility"]),
    product(
        "rug", brand="Weave", category_path="decor/textiles", price=180.0, shipping_sla_days=14
    ),
    product(
        "rug-blue", brand="Weave", category_path="decor/textiles", price=170.0, variant_group="rug"
    ),
    product(
        "rug-red", brand="Weave", category_path="decor/textiles", price=175.0, variant_group="rug"
    ),
    product("mug", brand="Clay", category_path="kitchen/mugs", price=12.0, stock_qty=0),
    product("bowl", brand="Clay", category_path="kitchen/bowls", price=30.0, stock_qty=1),
    product(
        "frame",
        brand="Lumo",
        category_path="decor/premium/frames",
        price=160.0,
        attributes={"material": "oak"},
    ),
]

# A premium decor page shows no parts or utility items (the lamp is premium decor).
PREMIUM_DECOR = {
    "id": "premium-decor-no-parts",
    "type": "pairing",
    "reason": "premium decor pages show no parts or utility items",
    "scope": {"placements": ["product_page"]},
    "context": {"attr": "category", "op": "prefix", "value": "decor/premium"},
    "forbid": {"attr": "tags", "op": "in", "value": ["replacement-part", "utility"]},
}
