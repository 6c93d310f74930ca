"""The rule contract: one pydantic model per rule type, discriminated on ``type``.

Every rule carries an id, a version (assigned by the store), a scope, an
optional validity window in a named time zone, a priority, an author and a
reason. See docs/rules.md for the semantics of each type.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)

from shelfwise.catalog.model import MarginBand, ProductId
from shelfwise.rules.predicate import Cmp, Predicate, custom_attribute
from shelfwise.values import Float, Id, Int, LocalTimestamp, Scalar, Text

RuleId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,127}$")]

SAFETY_TYPES = (
    "require_in_stock",
    "exclude",
    "suppress",
    "pairing",
    "price_relation",
    "margin_floor",
)
SCORE_TYPES = ("boost", "bury")
ARRANGE_TYPES = ("dedupe_variants", "pin", "cap")
CAPPABLE = frozenset({"brand", "category", "variant_group"})


class Scope(BaseModel):
    """Where a rule applies; an empty field means everywhere."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    placements: tuple[Id, ...] = Field(default=(), max_length=100)
    # category path prefixes of a viewed/cart item
    context_categories: tuple[Annotated[Text, Field(max_length=512)], ...] = Field(
        default=(), max_length=100
    )
    segments: dict[Id, tuple[Id, ...]] = Field(default_factory=dict)  # every key must match


class Window(BaseModel):
    """Validity window ``[start, end)``. Naive times are read in ``timezone``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: LocalTimestamp | None = None
    end: LocalTimestamp | None = None
    timezone: Annotated[Text, Field(max_length=64)] = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {value!r}") from e
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.start is None and self.end is None:
            raise ValueError("a window needs a start or an end")
        start, end = self.start_utc, self.end_utc
        if start is not None and end is not None and end <= start:
            raise ValueError(
                f"window ends ({end.isoformat()}) before it starts ({start.isoformat()})"
            )
        return self

    def _aware(self, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        zone: tzinfo = ZoneInfo(self.timezone)
        return value if value.tzinfo is not None else value.replace(tzinfo=zone)

    @property
    def start_utc(self) -> datetime | None:
        return self._aware(self.start)

    @property
    def end_utc(self) -> datetime | None:
        return self._aware(self.end)

    def contains(self, now: datetime) -> bool:
        start, end = self.start_utc, self.end_utc
        return (start is None or start <= now) and (end is None or now < end)


class RuleBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: RuleId
    version: int = Field(default=0, ge=0, description="Assigned by the store; 0 = not stored.")
    enabled: bool = True
    scope: Scope = Scope()
    window: Window | None = None
    priority: Int = Field(default=0, ge=-1000, le=1000)
    author: Text = Field(default="", max_length=128)
    reason: Text = Field(min_length=1, max_length=1000)

    def active_at(self, now: datetime) -> bool:
        return self.enabled and (self.window is None or self.window.contains(now))


class ExcludeRule(RuleBase):
    """Drop every candidate matching ``when``."""

    type: Literal["exclude"] = "exclude"
    when: Predicate


class RequireInStockRule(RuleBase):
    """Drop unavailable candidates and those with known stock below ``min_qty`` (0 = off)."""

    type: Literal["require_in_stock"] = "require_in_stock"
    min_qty: Int = Field(default=1, ge=0, le=10**9)


class SuppressRule(RuleBase):
    """Drop candidates whose ``attribute`` is one of ``values`` (usually with a window)."""

    type: Literal["suppress"] = "suppress"
    attribute: Annotated[Text, Field(min_length=1, max_length=128)] = "brand"
    values: tuple[Scalar, ...] = Field(min_length=1, max_length=1000)

    @property
    def when(self) -> Cmp:
        return Cmp(attr=self.attribute, op="in", value=self.values)

    @model_validator(mode="after")
    def _known(self) -> SuppressRule:
        self.when  # noqa: B018 - validates the attribute and values
        return self


class PairingRule(RuleBase):
    """When a context item (viewed, cart, or either) matches ``context``, drop candidates
    that match ``forbid`` and, if ``allow`` is given, those that do not match it."""

    type: Literal["pairing"] = "pairing"
    on: Literal["viewed", "cart", "any"] = "any"
    context: Predicate | None = None
    forbid: Predicate | None = None
    allow: Predicate | None = None

    @model_validator(mode="after")
    def _something(self) -> PairingRule:
        if self.forbid is None and self.allow is None:
            raise ValueError("a pairing rule needs forbid, allow or both")
        return self


class PriceRelationRule(RuleBase):
    """Keep candidates priced within ``[min_ratio, max_ratio] x anchor`` (a candidate
    without a price is dropped; without an anchor price the rule does not apply)."""

    type: Literal["price_relation"] = "price_relation"
    anchor: Literal["viewed", "cart_total", "cart_max"] = "viewed"
    min_ratio: Float | None = Field(default=None, gt=0, lt=1e6)
    max_ratio: Float | None = Field(default=None, gt=0, lt=1e6)
    applies_to: Predicate | None = None

    @model_validator(mode="after")
    def _bounds(self) -> PriceRelationRule:
        if self.min_ratio is None and self.max_ratio is None:
            raise ValueError("a price_relation rule needs min_ratio, max_ratio or both")
        if self.min_ratio and self.max_ratio and self.min_ratio > self.max_ratio:
            raise ValueError("min_ratio is above max_ratio: no price can satisfy it")
        return self


class MarginFloorRule(RuleBase):
    """Drop candidates whose margin band is below ``min_band``."""

    type: Literal["margin_floor"] = "margin_floor"
    min_band: MarginBand
    unknown: Literal["keep", "remove"] = "keep"


class BoostRule(RuleBase):
    """Multiply then add to the score of surviving candidates matching ``when``."""

    type: Literal["boost"] = "boost"
    when: Predicate
    multiply: Float = Field(default=1.0, ge=1.0, le=10.0)
    add: Float = Field(default=0.0, ge=0.0, le=1000.0)


class BuryRule(RuleBase):
    """Like boost, downwards."""

    type: Literal["bury"] = "bury"
    when: Predicate
    multiply: Float = Field(default=1.0, ge=0.0, le=1.0)
    add: Float = Field(default=0.0, ge=-1000.0, le=0.0)


class DedupeVariantsRule(RuleBase):
    """At most one product per variant group (the best ranked); never a variant of a
    context item when ``include_context``."""

    type: Literal["dedupe_variants"] = "dedupe_variants"
    include_context: bool = True


class CapRule(RuleBase):
    """At most ``max_items`` per value of ``attribute`` in a slate (category cut at ``depth``)."""

    type: Literal["cap"] = "cap"
    attribute: Annotated[Text, Field(min_length=1, max_length=128)] = "brand"
    max_items: Int = Field(ge=1, le=100)
    depth: Int | None = Field(default=None, ge=1, le=10)

    @field_validator("attribute")
    @classmethod
    def _cappable(cls, value: str) -> str:
        if value not in CAPPABLE and not custom_attribute(value):
            raise ValueError(f"cap by one of {sorted(CAPPABLE)} or attributes.<name>")
        return value


class PinRule(RuleBase):
    """Put ``product_id`` at ``position`` (1 = first) when it passes the safety rules."""

    type: Literal["pin"] = "pin"
    product_id: ProductId
    position: Int = Field(ge=1, le=100)


Rule = Annotated[
    ExcludeRule
    | RequireInStockRule
    | SuppressRule
    | PairingRule
    | PriceRelationRule
    | MarginFloorRule
    | BoostRule
    | BuryRule
    | DedupeVariantsRule
    | CapRule
    | PinRule,
    Field(discriminator="type"),
]
RULE = TypeAdapter(Rule)
RULES = TypeAdapter(list[Rule])


def parse_rule(data: object) -> Rule:
    rule: Rule = RULE.validate_python(data)
    return rule


def rule_body(rule: Rule) -> dict[str, object]:
    """The rule as stored and compared: JSON-ready, without the store's bookkeeping."""
    data: dict[str, object] = rule.model_dump(mode="json", exclude={"version"})
    return data
