from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shelfwise.catalog.model import Product, margin_band_for, normalise_category


def test_normalisation_of_brand_category_currency_and_tags() -> None:
    p = Product(
        product_id=" P1 ",
        title="  Linen   duvet  ",
        category_path=" Home > Bedding/ Duvet Covers ",
        brand="  HEARTHWOOD ",
        currency="eur",
        price=49.9,
        cost=20,
        tags=["Premium", "premium", " "],
    )
    assert p.product_id == "P1"
    assert p.title == "Linen duvet"
    assert p.category_path == "home/bedding/duvet covers"
    assert p.brand == "Hearthwood"
    assert p.currency == "EUR"
    assert p.tags == ("premium",)
    assert p.margin_band == "high"  # (49.9 - 20) / 49.9 = 0.60


def test_availability_follows_stock_when_not_given() -> None:
    assert Product(product_id="a", title="t", stock_qty=0).availability == "out_of_stock"
    assert Product(product_id="a", title="t", stock_qty=3).availability == "in_stock"
    assert Product(product_id="a", title="t").availability == "in_stock"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price", 0),
        ("price", -1),
        ("currency", "XXX"),
        ("stock_qty", -2),
        ("shipping_sla_days", 400),
    ],
)
def test_invalid_values_rejected(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as e:
        Product.model_validate({"product_id": "a", "title": "t", field: value})
    assert e.value.errors()[0]["loc"] == (field,)


def test_unknown_field_rejected() -> None:
    with pytest.raises(ValidationError):
        Product.model_validate({"product_id": "a", "title": "t", "colour": "red"})


@pytest.mark.parametrize(
    ("price", "cost", "band"), [(100, 80, "low"), (100, 60, "medium"), (100, 55, "high")]
)
def test_margin_bands(price: float, cost: float, band: str) -> None:
    assert margin_band_for(price, cost) == band


@given(st.lists(st.text(alphabet="abc >/|", min_size=0, max_size=6), max_size=5))
def test_category_normalisation_is_idempotent(parts: list[str]) -> None:
    once = normalise_category("/".join(parts))
    assert normalise_category(once) == once
    assert once == once.strip()


def test_content_hash_ignores_nothing_that_matters() -> None:
    a = Product(product_id="a", title="t", price=10)
    assert a.content_hash() == Product(product_id="a", title="t", price=10).content_hash()
    assert a.content_hash() != Product(product_id="a", title="t", price=11).content_hash()
