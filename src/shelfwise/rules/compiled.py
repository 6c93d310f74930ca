"""A rule compiled against the catalog snapshot: its masks and a fast scope check."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from shelfwise.candidates.base import IntArray, RecContext
from shelfwise.catalog.model import MARGIN_BANDS
from shelfwise.rules.masks import BoolArray, CatalogMasks
from shelfwise.rules.model import (
    ARRANGE_TYPES,
    SAFETY_TYPES,
    SCORE_TYPES,
    BoostRule,
    BuryRule,
    CapRule,
    ExcludeRule,
    MarginFloorRule,
    PairingRule,
    PinRule,
    PriceRelationRule,
    RequireInStockRule,
    Rule,
    SuppressRule,
)
from shelfwise.rules.predicate import Cmp, custom_attribute, product_value

TYPE_ORDER = (*SAFETY_TYPES, *SCORE_TYPES, *ARRANGE_TYPES)

BUILTIN_IN_STOCK = RequireInStockRule(
    id="builtin.in-stock",
    version=1,
    author="shelfwise",
    reason="only recommend what can be bought now",
)


def order_key(rule: Rule) -> tuple[int, int, str]:
    """The documented evaluation order: by type, then higher priority first, then id."""
    return (TYPE_ORDER.index(rule.type), -rule.priority, rule.id)


@dataclass
class Compiled:
    """One rule with what it needs per request; ``remove`` etc. are full-catalog masks."""

    rule: Rule
    placements: frozenset[str]
    context_lut: BoolArray | None = None  # over category codes
    remove: BoolArray | None = None  # static safety rules and pairing's forbid
    keep: BoolArray | None = None  # pairing's allow
    context: BoolArray | None = None  # pairing's context predicate
    applies: BoolArray | None = None  # boosts, bury, price_relation.applies_to
    keys: npt.NDArray[np.int64] | None = None  # caps
    pin_index: int | None = None
    default: bool = False  # the built-in stock rule, replaced by any stored one in scope

    def in_scope(self, ctx: RecContext, category: npt.NDArray[np.int32], around: IntArray) -> bool:
        rule = self.rule
        if self.placements and ctx.placement not in self.placements:
            return False
        for key, allowed in rule.scope.segments.items():
            if ctx.segment.get(key) not in allowed:
                return False
        if rule.window is not None and not rule.window.contains(ctx.now):
            return False
        if self.context_lut is not None:
            return len(around) > 0 and bool(self.context_lut[category[around]].any())
        return True


def compile_rule(rule: Rule, masks: CatalogMasks, default: bool = False) -> Compiled:
    snap = masks.snapshot
    c = Compiled(rule=rule, placements=frozenset(rule.scope.placements), default=default)
    if rule.scope.context_categories:
        cmp = Cmp(attr="category", op="in", value=rule.scope.context_categories)
        prefixes = [Cmp(attr="category", op="prefix", value=p) for p in cmp.value]  # type: ignore[union-attr]
        lut = np.zeros(len(snap.categories.values), dtype=bool)
        for p in prefixes:
            lut |= masks.codes_lut("category", p)
        c.context_lut = lut
    if isinstance(rule, ExcludeRule | SuppressRule):
        c.remove = masks.mask(rule.when)
    elif isinstance(rule, RequireInStockRule):
        c.remove = _out_of_stock(masks, rule.min_qty)
    elif isinstance(rule, MarginFloorRule):
        band = snap.column("margin_band").astype(np.int64)
        low = (band >= 0) & (band < MARGIN_BANDS.index(rule.min_band))
        c.remove = low | (band < 0) if rule.unknown == "remove" else low
    elif isinstance(rule, PairingRule):
        c.context = None if rule.context is None else masks.mask(rule.context)
        c.remove = None if rule.forbid is None else masks.mask(rule.forbid)
        c.keep = None if rule.allow is None else masks.mask(rule.allow)
    elif isinstance(rule, PriceRelationRule):
        c.applies = None if rule.applies_to is None else masks.mask(rule.applies_to)
    elif isinstance(rule, BoostRule | BuryRule):
        c.applies = masks.mask(rule.when)
    elif isinstance(rule, CapRule):
        c.keys = _cap_keys(masks, rule)
    elif isinstance(rule, PinRule):
        c.pin_index = snap.index_of(rule.product_id)
    return c


def _out_of_stock(masks: CatalogMasks, min_qty: int) -> BoolArray:
    snap = masks.snapshot
    if min_qty == 0:
        return np.zeros(masks.n, dtype=bool)
    stock = snap.column("stock").astype(np.int64)
    available = snap.column("available").astype(bool)
    out: BoolArray = ~available | ((stock >= 0) & (stock < min_qty))
    return out


def _cap_keys(masks: CatalogMasks, rule: CapRule) -> npt.NDArray[np.int64]:
    snap = masks.snapshot
    attr = rule.attribute
    if attr in ("brand", "variant_group"):
        return snap.column(attr).astype(np.int64)
    if attr == "category":
        codes = snap.column("category").astype(np.int64)
        if rule.depth is None:
            return codes
        cut: dict[str, int] = {}
        lut = np.fromiter(
            (
                cut.setdefault("/".join(v.split("/")[: rule.depth]), len(cut) + 1) if v else 0
                for v in snap.categories.values
            ),
            dtype=np.int64,
        )
        return lut[codes]
    name = custom_attribute(attr)
    seen: dict[object, int] = {}
    return np.fromiter(
        (
            0
            if (v := product_value(p, attr)) is None
            else seen.setdefault((name, str(v).lower()), len(seen) + 1)
            for p in snap.products
        ),
        dtype=np.int64,
        count=len(snap.products),
    )
