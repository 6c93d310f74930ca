"""A small predicate language over catalog attributes, evaluated as plain data.

A predicate is a comparison ``{"attr": "brand", "op": "in", "value": ["Acme"]}``
or a combination ``{"and": [...]}``, ``{"or": [...]}``, ``{"not": {...}}``.
Nothing is ever evaluated as code or a template: attribute names and values are
looked up and compared, so a value such as ``"1; DROP TABLE rules"`` is just a
string that no product has.

Attributes: ``brand``, ``category`` (the normalised path), ``tags``,
``season_tags``, ``price``, ``stock``, ``margin_band`` (ordered low < medium <
high), ``sla_days``, ``available``, ``variant_group``, ``product_id`` and
``attributes.<name>`` for any feed attribute. A product without a value never
matches a comparison (``ne`` and ``not_in`` match it).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from shelfwise.catalog.model import MARGIN_BANDS, Product, normalise_brand, normalise_category
from shelfwise.values import Scalar, ScalarOrList, Text

Op = Literal["eq", "ne", "in", "not_in", "lt", "le", "gt", "ge", "prefix", "contains"]

NUMERIC = frozenset({"price", "stock", "sla_days"})
CODED = frozenset({"brand", "category", "variant_group"})
SETS = frozenset({"tags", "season_tags"})
FIXED = NUMERIC | CODED | SETS | {"margin_band", "available", "product_id"}
ATTR_PREFIX = "attributes."

_ORDERED_OPS = frozenset({"lt", "le", "gt", "ge"})
_LIST_OPS = frozenset({"in", "not_in"})

_CONFIG = ConfigDict(
    extra="forbid",
    frozen=True,
    validate_by_name=True,
    validate_by_alias=True,
    serialize_by_alias=True,
)


def custom_attribute(attr: str) -> str | None:
    """``"attributes.material"`` -> ``"material"``; a fixed attribute -> None."""
    return attr[len(ATTR_PREFIX) :] if attr.startswith(ATTR_PREFIX) else None


def normalise_value(attr: str, value: Scalar) -> Scalar:
    """Bring a rule's value to the form the catalog stores (brand casing, category path)."""
    if attr == "brand" and isinstance(value, str):
        return normalise_brand(value).lower()
    if attr == "category" and isinstance(value, str):
        return normalise_category(value)
    if attr in SETS and isinstance(value, str):
        return value.strip().lower()
    return value


class Cmp(BaseModel):
    """One comparison of a product attribute with a value (or a list for in/not_in)."""

    model_config = _CONFIG

    attr: Text = Field(min_length=1, max_length=128)
    op: Op = "eq"
    value: ScalarOrList

    @model_validator(mode="after")
    def _check(self) -> Cmp:
        attr, op = self.attr, self.op
        if attr not in FIXED and not (custom_attribute(attr) or ""):
            raise ValueError(
                f"unknown attribute {attr!r}: use one of {sorted(FIXED)} or attributes.<name>"
            )
        is_list = isinstance(self.value, tuple)
        if (op in _LIST_OPS) != is_list:
            raise ValueError(f"op {op!r} needs {'a list' if op in _LIST_OPS else 'one value'}")
        values = self.value if isinstance(self.value, tuple) else (self.value,)
        if op in _ORDERED_OPS:
            if attr in CODED | SETS | {"product_id", "available"}:
                raise ValueError(f"op {op!r} does not apply to {attr!r}")
            if attr in NUMERIC and not all(_is_number(v) for v in values):
                raise ValueError(f"{attr!r} compares with numbers")
        if op == "prefix" and not all(isinstance(v, str) for v in values):
            raise ValueError("op 'prefix' needs a string")
        if op == "prefix" and attr in NUMERIC | {"margin_band", "available"}:
            raise ValueError(f"op 'prefix' does not apply to {attr!r}")
        if op == "contains" and attr not in SETS:
            raise ValueError("op 'contains' applies to tags and season_tags")
        if attr == "margin_band" and not all(v in MARGIN_BANDS for v in values):
            raise ValueError(f"margin_band is one of {list(MARGIN_BANDS)}")
        if attr == "available" and not all(isinstance(v, bool) for v in values):
            raise ValueError("available compares with true/false")
        return self


class And(BaseModel):
    model_config = _CONFIG
    and_: tuple[Predicate, ...] = Field(alias="and", min_length=1)


class Or(BaseModel):
    model_config = _CONFIG
    or_: tuple[Predicate, ...] = Field(alias="or", min_length=1)


class Not(BaseModel):
    model_config = _CONFIG
    not_: Predicate = Field(alias="not")


def _kind(data: Any) -> str | None:
    if isinstance(data, BaseModel):
        return {Cmp: "cmp", And: "and", Or: "or", Not: "not"}.get(type(data))
    if isinstance(data, dict):
        for key in ("and", "or", "not"):
            if key in data or f"{key}_" in data:
                return key
        return "cmp"
    return None


Predicate = Annotated[
    Union[  # noqa: UP007 - tagged union members need Annotated
        Annotated[Cmp, Tag("cmp")],
        Annotated[And, Tag("and")],
        Annotated[Or, Tag("or")],
        Annotated[Not, Tag("not")],
    ],
    Discriminator(_kind),
]

for _model in (And, Or, Not):
    _model.model_rebuild()


def _is_number(v: Scalar) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def leaves(pred: Predicate) -> list[Cmp]:
    """Every comparison in a predicate, depth first."""
    if isinstance(pred, Cmp):
        return [pred]
    if isinstance(pred, And):
        return [c for p in pred.and_ for c in leaves(p)]
    if isinstance(pred, Or):
        return [c for p in pred.or_ for c in leaves(p)]
    return leaves(pred.not_)


def product_value(product: Product, attr: str) -> Any:
    """The value a predicate sees for ``attr`` (None when the product has none)."""
    name = custom_attribute(attr)
    if name is not None:
        return product.attributes.get(name)
    if attr == "brand":
        return product.brand.lower() if product.brand else None
    if attr == "category":
        return product.category_path
    if attr in SETS:
        return getattr(product, attr)
    if attr == "stock":
        return product.stock_qty
    if attr == "sla_days":
        return product.shipping_sla_days
    if attr == "available":
        return product.is_available
    if attr == "margin_band":
        return MARGIN_BANDS.index(product.margin_band) if product.margin_band else None
    return getattr(product, attr)


def compare(cmp: Cmp, got: Any) -> bool:
    """Evaluate one comparison against a value from :func:`product_value`."""
    values = cmp.value if isinstance(cmp.value, tuple) else (cmp.value,)
    wanted = [normalise_value(cmp.attr, v) for v in values]
    if cmp.attr == "margin_band":
        wanted = [MARGIN_BANDS.index(str(v)) for v in wanted]
    op = cmp.op
    if cmp.attr in SETS:
        have = set(got or ())
        hit = (
            any(w in have for w in wanted)
            if op in ("eq", "in", "contains", "ne", "not_in")
            else False
        )
        if op == "prefix":
            hit = any(t.startswith(str(w)) for t in have for w in wanted)
        return not hit if op in ("ne", "not_in") else hit
    if got is None:
        return op in ("ne", "not_in")
    if op in ("eq", "in"):
        return any(_equal(got, w) for w in wanted)
    if op in ("ne", "not_in"):
        return not any(_equal(got, w) for w in wanted)
    if op == "prefix":
        w = str(wanted[0])
        text = str(got)
        return text == w or text.startswith(w if cmp.attr != "category" else w + "/")
    try:
        a, b = float(got), float(wanted[0])
    except (TypeError, ValueError):
        a, b = str(got), str(wanted[0])  # type: ignore[assignment]
    return {"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op]


def _equal(got: Any, want: Scalar) -> bool:
    if isinstance(got, str) and isinstance(want, str):
        return got.lower() == want.lower()
    if isinstance(got, bool) or isinstance(want, bool):
        return got is want
    return bool(got == want)


def matches(pred: Predicate, product: Product) -> bool:
    """Interpret a predicate on one product (validation, previews and the reference semantics)."""
    if isinstance(pred, Cmp):
        return compare(pred, product_value(product, pred.attr))
    if isinstance(pred, And):
        return all(matches(p, product) for p in pred.and_)
    if isinstance(pred, Or):
        return any(matches(p, product) for p in pred.or_)
    return not matches(pred.not_, product)
