"""The behavioural event contract, version 1.

Every event is a closed pydantic model (``extra="forbid"``) discriminated by
``type`` and stamped with ``schema_version``. ``event_id`` is the idempotency
key. Shape is checked here, including the known-currency check (error type
``unknown_currency``) and filling ``platform``/``os``/``browser`` from a bare
``user_agent``; checks that need context (revenue consistent with lines within a
tolerance, clock skew, catalog joins) live in ``contracts.checks``.

Recommendation events close the loop: a served slate has a ``rec_id``; the
``rec_impression`` that shows it and every later click, add-to-cart and order
line that carries that ``rec_id`` are attributed to it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    model_validator,
)
from pydantic_core import PydanticCustomError

from shelfwise.catalog.model import CURRENCIES, ProductId
from shelfwise.contracts.useragent import parse_user_agent
from shelfwise.values import NUMBER, Id, PathId, Text, Timestamp

ShortText = Annotated[Text, Field(max_length=256)]
Platform = Literal["web", "mobile_web", "ios_app", "android_app", "webview", "email", "other"]
PageType = Literal["home", "category", "search", "other"]
Placement = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9_\-]+$")
]
# Bounds before NUMBER: pydantic checks them natively (values.NUMBER).
Money = Annotated[float, Field(ge=0, lt=1e9, allow_inf_nan=False), NUMBER]
Quantity = Annotated[int, Field(ge=1, le=100_000), NUMBER]
Position = Annotated[int, Field(ge=1, le=1000), NUMBER]


def _known_currency(value: str) -> str:
    code = value.strip().upper()
    if code not in CURRENCIES:
        raise PydanticCustomError(
            "unknown_currency", "unknown currency code {code!r}", {"code": value}
        )
    return code


Currency = Annotated[str, AfterValidator(_known_currency)]

SCHEMA_VERSION: Literal[1] = 1
_UA_FIELDS = ("platform", "os", "browser")
MAX_LINES = 2_000  # wholesale orders in real data reach ~1,100 lines


class _Event(BaseModel):
    """Fields common to every event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: Id
    occurred_at: Timestamp
    anonymous_id: Id
    customer_id: Id | None = None
    session_id: Id | None = None
    device_id: Id | None = None
    platform: Platform | None = None
    os: ShortText | None = None
    browser: ShortText | None = None
    app_version: ShortText | None = None
    user_agent: Annotated[Text, Field(max_length=1024)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_user_agent(cls, data: Any) -> Any:
        """Fill platform/os/browser the sender left out from its user agent."""
        if not isinstance(data, dict):
            return data
        ua = data.get("user_agent")
        if not isinstance(ua, str) or not ua or all(data.get(k) for k in _UA_FIELDS):
            return data
        parsed = parse_user_agent(ua)
        filled = dict(data)
        for key in _UA_FIELDS:
            value = getattr(parsed, key)
            if not filled.get(key) and value is not None:
                filled[key] = value
        return filled


class PageView(_Event):
    type: Literal["page_view"] = "page_view"
    page_type: PageType
    category_path: ShortText | None = None
    query: ShortText | None = None


class ProductView(_Event):
    type: Literal["product_view"] = "product_view"
    product_id: ProductId
    price: Money | None = None
    currency: Currency | None = None
    placement: Placement | None = None
    rec_id: PathId | None = None


class AddToCart(_Event):
    type: Literal["add_to_cart"] = "add_to_cart"
    product_id: ProductId
    quantity: Quantity = 1
    unit_price: Money | None = None
    currency: Currency | None = None
    placement: Placement | None = None
    rec_id: PathId | None = None


class RemoveFromCart(_Event):
    type: Literal["remove_from_cart"] = "remove_from_cart"
    product_id: ProductId
    quantity: Quantity = 1


class OrderLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    product_id: ProductId
    quantity: Quantity
    unit_price: Money
    rec_id: PathId | None = None


class Purchase(_Event):
    type: Literal["purchase"] = "purchase"
    order_id: Id
    lines: Annotated[tuple[OrderLine, ...], Field(min_length=1, max_length=MAX_LINES)]
    currency: Currency
    revenue: Money


class ReturnLine(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    product_id: ProductId
    quantity: Quantity
    unit_price: Money | None = None


class Return(_Event):
    type: Literal["return"] = "return"
    order_id: Id
    lines: Annotated[tuple[ReturnLine, ...], Field(min_length=1, max_length=MAX_LINES)]


class ShownItem(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    product_id: ProductId
    position: Position


class RecImpression(_Event):
    type: Literal["rec_impression"] = "rec_impression"
    rec_id: PathId
    placement: Placement
    items: Annotated[tuple[ShownItem, ...], Field(min_length=1, max_length=200)]
    experiment_id: Id | None = None
    arm: Id | None = None


class RecClick(_Event):
    type: Literal["rec_click"] = "rec_click"
    rec_id: PathId
    placement: Placement
    product_id: ProductId
    position: Position | None = None


class Login(_Event):
    """A shopper identified themselves: links ``anonymous_id``/``device_id`` to ``customer_id``."""

    type: Literal["login"] = "login"
    customer_id: Id


Event = Annotated[
    PageView
    | ProductView
    | AddToCart
    | RemoveFromCart
    | Purchase
    | Return
    | RecImpression
    | RecClick
    | Login,
    Field(discriminator="type"),
]

EVENT_TYPES: dict[str, type[_Event]] = {
    "page_view": PageView,
    "product_view": ProductView,
    "add_to_cart": AddToCart,
    "remove_from_cart": RemoveFromCart,
    "purchase": Purchase,
    "return": Return,
    "rec_impression": RecImpression,
    "rec_click": RecClick,
    "login": Login,
}

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(raw: object) -> Event:
    """Validate one raw event (dict or JSON-decoded object); raises ValidationError."""
    return EVENT_ADAPTER.validate_python(raw)
