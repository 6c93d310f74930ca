"""The product contract: what commerce needs to know about an item."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shelfwise.values import Float, Int, PathId, Scalar, Text

# A product id is a path segment of the API (/v1/products/{product_id}): no "/".
ProductId = PathId
Tag = Annotated[Text, Field(max_length=128)]
AttributeName = Annotated[Text, Field(min_length=1, max_length=128)]
Availability = Literal["in_stock", "out_of_stock", "preorder", "discontinued"]
MarginBand = Literal["low", "medium", "high"]
MARGIN_BANDS: tuple[MarginBand, ...] = ("low", "medium", "high")

# ISO 4217 codes a store is likely to price in; an unknown code is a data error.
CURRENCIES = frozenset(
    [
        "EUR",
        "USD",
        "GBP",
        "CHF",
        "SEK",
        "NOK",
        "DKK",
        "PLN",
        "CZK",
        "HUF",
        "RON",
        "BGN",
        "JPY",
        "CNY",
        "AUD",
        "CAD",
        "NZD",
        "BRL",
        "MXN",
        "INR",
        "KRW",
        "SGD",
        "HKD",
        "ZAR",
        "TRY",
        "AED",
        "SAR",
        "ILS",
        "RUB",
        "UAH",
    ]
)

_SPACES = re.compile(r"\s+")


def margin_band_for(price: float, cost: float) -> MarginBand:
    """Gross margin rate < 25% is low, < 45% medium, else high."""
    rate = (price - cost) / price
    if rate < 0.25:
        return "low"
    return "medium" if rate < 0.45 else "high"


def normalise_category(path: str) -> str:
    """``" Home > Bedding/ Duvets "`` -> ``"home/bedding/duvets"``."""
    parts = re.split(r"\s*[>/|]\s*", path.strip().lower())
    return "/".join(_SPACES.sub(" ", p).strip() for p in parts if p.strip())


def normalise_brand(brand: str) -> str:
    """Collapse whitespace; keep the merchant's casing except ALL-CAPS/all-lower noise."""
    brand = _SPACES.sub(" ", brand).strip()
    if brand.isupper() or brand.islower():
        return brand.title()
    return brand


class Product(BaseModel):
    """One sellable item, validated and normalised."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    product_id: ProductId
    parent_id: ProductId | None = None
    variant_group: Text | None = Field(default=None, max_length=128)
    title: Text = Field(min_length=1, max_length=1000)
    description: Text | None = Field(default=None, max_length=20_000)
    category_path: Text | None = Field(default=None, max_length=512)
    brand: Text | None = Field(default=None, max_length=256)
    price: Float | None = Field(default=None, gt=0, lt=1e9)
    currency: Text | None = Field(default=None, max_length=8)
    cost: Float | None = Field(default=None, ge=0, lt=1e9)
    margin_band: MarginBand | None = None
    stock_qty: Int | None = Field(default=None, ge=0, le=10**9)
    availability: Availability | None = None
    shipping_sla_days: Int | None = Field(default=None, ge=0, le=365)
    tags: tuple[Tag, ...] = Field(default=(), max_length=200)
    season_tags: tuple[Tag, ...] = Field(default=(), max_length=50)
    attributes: dict[AttributeName, Scalar] = Field(default_factory=dict, max_length=200)
    image_url: Text | None = Field(default=None, max_length=2000)
    active: bool = True

    @field_validator("title", "description", mode="after")
    @classmethod
    def _squash(cls, value: str | None) -> str | None:
        return None if value is None else _SPACES.sub(" ", value).strip() or None

    @field_validator("category_path", mode="after")
    @classmethod
    def _category(cls, value: str | None) -> str | None:
        return normalise_category(value) or None if value is not None else None

    @field_validator("brand", mode="after")
    @classmethod
    def _brand(cls, value: str | None) -> str | None:
        return normalise_brand(value) or None if value is not None else None

    @field_validator("currency", mode="after")
    @classmethod
    def _currency(cls, value: str | None) -> str | None:
        if value is None:
            return None
        code = value.strip().upper()
        if code not in CURRENCIES:
            raise ValueError(f"unknown currency code {value!r}")
        return code

    @field_validator("tags", "season_tags", mode="after")
    @classmethod
    def _tags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        seen = dict.fromkeys(t.strip().lower() for t in value if t.strip())
        return tuple(seen)

    def model_post_init(self, _context: Any) -> None:
        # Derive what the feed left out, so every product is internally consistent.
        if self.margin_band is None and self.price is not None and self.cost is not None:
            object.__setattr__(self, "margin_band", margin_band_for(self.price, self.cost))
        if self.availability is None:
            avail: Availability = "in_stock" if (self.stock_qty or 0) > 0 else "out_of_stock"
            if self.stock_qty is None:
                avail = "in_stock"
            object.__setattr__(self, "availability", avail)
        if self.variant_group is None and self.parent_id is not None:
            object.__setattr__(self, "variant_group", self.parent_id)

    @property
    def is_available(self) -> bool:
        return self.active and self.availability in ("in_stock", "preorder")

    def content_hash(self) -> str:
        payload = self.model_dump(mode="json")
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


class StoredProduct(Product):
    """A product as the store holds it, with its timestamps."""

    created_at: datetime
    updated_at: datetime


class ProductPatch(BaseModel):
    """A hot update: stock and/or price (the fields that change by the minute)."""

    model_config = ConfigDict(extra="forbid")

    stock_qty: Int | None = Field(default=None, ge=0, le=10**9)
    availability: Availability | None = None
    price: Float | None = Field(default=None, gt=0, lt=1e9)
    cost: Float | None = Field(default=None, ge=0, lt=1e9)

    def is_empty(self) -> bool:
        return not self.model_fields_set


class ProductPatchItem(ProductPatch):
    product_id: ProductId
