"""The generated home-goods catalog: valid, varied, and the same for the same seed."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from shelfwise.catalog.feed import validate_records
from shelfwise.catalog.model import Product
from shelfwise.simulate.catalog import CatalogSpec, SimCatalog, generate_catalog, generate_store
from shelfwise.simulate.categories import CATEGORIES, SLOW_BRANDS


@pytest.fixture(scope="module")
def store() -> SimCatalog:
    return generate_store(CatalogSpec(n_products=3_000, seed=11))


def test_every_product_is_valid_and_validation_changes_nothing(store: SimCatalog) -> None:
    feed = validate_records(enumerate(store.records))
    assert feed.rejected == []
    assert feed.products == store.products
    assert [p.product_id for p in store.products][:3] == ["P000001", "P000002", "P000003"]
    assert len({p.product_id for p in store.products}) == 3_000


def test_same_seed_same_catalog_other_seed_other_catalog() -> None:
    a = generate_store(CatalogSpec(n_products=500, seed=3))
    b = generate_store(CatalogSpec(n_products=500, seed=3))
    c = generate_store(CatalogSpec(n_products=500, seed=4))
    assert a.records == b.records
    assert np.array_equal(a.quality, b.quality)
    assert a.records != c.records
    assert generate_catalog(CatalogSpec(n_products=50, seed=3)) == [
        Product.model_validate(r)
        for r in generate_store(CatalogSpec(n_products=50, seed=3)).records
    ]


@pytest.mark.parametrize("n", [10, 500, 2_001])
def test_exact_sizes(n: int) -> None:
    assert generate_store(CatalogSpec(n_products=n)).n == n


def test_variant_groups_share_name_price_and_brand_but_not_colour(store: SimCatalog) -> None:
    groups: dict[str, list[Product]] = {}
    for p in store.products:
        if p.parent_id:
            groups.setdefault(p.parent_id, []).append(p)
    sizes = Counter(len(v) for v in groups.values())
    assert set(sizes) <= {1, 2, 3, 4} and sizes[2] + sizes[3] + sizes[4] > 100
    for members in groups.values():
        assert (
            len({(m.price, m.brand, m.category_path, m.title.rsplit(" - ", 1)[0]) for m in members})
            == 1
        )
        assert len({m.attributes["colour"] for m in members}) == len(members)
        assert all(m.variant_group == m.parent_id for m in members)
    variant_share = sum(len(v) for v in groups.values() if len(v) > 1) / store.n
    assert 0.45 < variant_share < 0.75  # 35% of groups have 2-4 variants


def test_prices_and_margins_follow_the_category(store: SimCatalog) -> None:
    by_path = {c.path: c for c in CATEGORIES}
    for p in store.products:
        spec = by_path[p.category_path]
        assert spec.price[0] - 0.01 <= p.price <= spec.price[1] + 0.01
        rate = (p.price - p.cost) / p.price
        assert spec.margin[0] - 0.01 <= rate <= spec.margin[1] + 0.01
    premium = [p.price for p in store.products if p.category_path == "decor/premium"]
    parts = [p.price for p in store.products if p.category_path == "parts/replacement"]
    assert min(premium) > max(parts)
    assert {p.margin_band for p in store.products} == {"low", "medium", "high"}


def test_stock_outs_slow_suppliers_and_seasons(store: SimCatalog) -> None:
    out = sum(p.stock_qty == 0 for p in store.products) / store.n
    assert 0.04 < out < 0.08
    assert all(p.availability == "out_of_stock" for p in store.products if p.stock_qty == 0)
    slow = [p.shipping_sla_days for p in store.products if p.brand in SLOW_BRANDS]
    fast = [p.shipping_sla_days for p in store.products if p.brand not in SLOW_BRANDS]
    assert slow and min(slow) >= 8 and max(fast) <= 5
    christmas = {p.season_tags for p in store.products if p.category_path == "seasonal/christmas"}
    assert christmas == {("christmas",)}
    assert {p.category_path for p in store.products} == {c.path for c in CATEGORIES}


def test_brands_serve_a_few_categories_and_grow_with_the_catalog() -> None:
    big = generate_store(CatalogSpec(n_products=30_000, seed=1))
    assert len(big.brands) == 200
    cats_per_brand = Counter(
        len({int(c) for c in big.category[big.brand == b]}) for b in range(len(big.brands))
    )
    assert max(cats_per_brand) < len(CATEGORIES)
