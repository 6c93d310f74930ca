"""What the exposure cap is calibrated over (``pipeline.exposure``): viewed products
for a product placement, a sample of known people for home."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shelfwise.catalog import CatalogSnapshot
from shelfwise.catalog.model import Product
from shelfwise.catalog.static import snapshot_of_items
from shelfwise.pipeline.exposure import anchor_requests, people_of
from shelfwise.serving.placements import Objective, Placement

HOME = Placement(
    name="home",
    page="home",
    sources={"popular": 1.0},
    rule_scope="home",
    objective=Objective(exposure_cap=0.2),
    k=12,
)
SIMILAR = HOME.model_copy(update={"name": "similar", "page": "product", "requires_item": True})


def _snapshot() -> CatalogSnapshot:
    products = [
        Product(product_id=f"p{i}", title=f"p{i}", stock_qty=0 if i == 1 else 5) for i in range(4)
    ]
    return snapshot_of_items([p.product_id for p in products], products)


def test_home_is_calibrated_over_every_known_person() -> None:
    got = anchor_requests(HOME, _snapshot(), ("ann", "bob", "cy"), 12)
    assert [(r.person, r.item, r.k, r.placement, who) for r, who in got] == [
        ("ann", (), 12, "home", "ann"),
        ("bob", (), 12, "home", "bob"),
        ("cy", (), 12, "home", "cy"),
    ]


def test_a_product_placement_is_calibrated_over_in_stock_products_anonymously() -> None:
    got = anchor_requests(SIMILAR, _snapshot(), ("ann", "bob"), 10)
    assert [(r.item, r.person, who) for r, who in got] == [
        (("p0",), None, None),
        (("p2",), None, None),
        (("p3",), None, None),
    ]


def test_a_large_store_is_calibrated_on_a_fixed_sample_of_its_people() -> None:
    people = tuple(f"u{i:04d}" for i in range(1000))
    sample = people_of(people, 100)
    assert len(sample) == len(set(sample)) == 100
    assert sample == sorted(sample)  # in the store's order, drawn evenly
    assert set(sample) <= set(people)
    assert sample == people_of(people, 100)  # the same sample every training
    assert sample[0] < "u0100" and sample[-1] > "u0900"  # spread over all of them
    got = anchor_requests(HOME, _snapshot(), people, 12, max_anchors=50)
    assert len(got) == 50


def test_a_cart_placement_cannot_be_capped() -> None:
    with pytest.raises(ValidationError, match="not over carts"):
        HOME.model_validate(
            {**HOME.model_dump(), "name": "cart", "page": "cart", "uses_cart": True}
        )
