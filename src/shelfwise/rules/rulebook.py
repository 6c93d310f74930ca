"""Evaluation: pure functions of (rules, snapshot, context, candidates) with a decision trace.

Order (deterministic, see docs/rules.md):

1. ``apply_safety`` removes candidates, rule by rule in the order
   require_in_stock, exclude, suppress, pairing, price_relation, margin_floor
   (within a type: higher priority first, then id). A removed candidate is
   credited to the first rule that removed it. Then boost and bury rules (same
   ordering) adjust the scores of the survivors only, so a boost can never
   bring back a removed item.
2. ``arrange`` runs after ranking: variant de-duplication, then pins (higher
   priority first), then diversity caps while the slate fills up to ``k``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shelfwise.candidates.base import FloatArray, IntArray, RecContext
from shelfwise.catalog import CatalogSnapshot
from shelfwise.rules.arrange import arrange
from shelfwise.rules.compiled import BUILTIN_IN_STOCK, Compiled, compile_rule, order_key
from shelfwise.rules.masks import BoolArray, CatalogMasks
from shelfwise.rules.model import (
    SAFETY_TYPES,
    SCORE_TYPES,
    PairingRule,
    PriceRelationRule,
    Rule,
)
from shelfwise.rules.trace import ArrangeResult, Decision, SafetyResult, decide


class Rulebook:
    """The enabled rules of one rulebook version, compiled against a catalog snapshot.

    Compilation is lazy and repeated only when the snapshot changes; evaluation
    never mutates its inputs.
    """

    def __init__(
        self,
        rules: Sequence[Rule],
        snapshot: CatalogSnapshot,
        *,
        version: int = 0,
        masks: CatalogMasks | None = None,
        in_stock_default: bool = True,
    ) -> None:
        self.rules = tuple(sorted((r for r in rules if r.enabled), key=order_key))
        self.snapshot = snapshot
        self.version = version
        shared = masks is not None and masks.snapshot is snapshot
        self.masks: CatalogMasks = masks if masks is not None and shared else CatalogMasks(snapshot)
        self.in_stock_default = in_stock_default
        self._state: object = None
        self._safety: list[Compiled] = []
        self._score: list[Compiled] = []
        self._arrange: list[Compiled] = []

    def _sync(self) -> None:
        self.masks.sync()
        state = self.masks.state
        if state == self._state:
            return
        compiled = [compile_rule(r, self.masks) for r in self.rules]
        if self.in_stock_default:
            compiled.insert(0, compile_rule(BUILTIN_IN_STOCK, self.masks, default=True))
        self._safety = [c for c in compiled if c.rule.type in SAFETY_TYPES]
        self._score = [c for c in compiled if c.rule.type in SCORE_TYPES]
        self._arrange = [c for c in compiled if c.rule.type not in (*SAFETY_TYPES, *SCORE_TYPES)]
        self._state = state

    def _active(self, ctx: RecContext, group: list[Compiled]) -> list[Compiled]:
        category = self.snapshot.category
        around = np.asarray((*ctx.context_items, *ctx.cart_items), dtype=np.int64)
        out = [c for c in group if c.in_scope(ctx, category, around)]
        if out and out[0].default and any(c.rule.type == "require_in_stock" for c in out[1:]):
            out = out[1:]  # a stored stock rule in scope replaces the built-in one
        return out

    def apply_safety(
        self, ctx: RecContext, items: IntArray, scores: FloatArray, *, boost: bool = True
    ) -> SafetyResult:
        """Remove what the safety rules forbid, then apply boosts/buries to the survivors."""
        self._sync()
        items = np.asarray(items, dtype=np.int64)
        scores = np.asarray(scores, dtype=np.float64)
        alive = np.ones(len(items), dtype=bool)
        trace: list[Decision] = []
        for c in self._active(ctx, self._safety):
            hit = self._hits(c, ctx, items)
            if hit is None:
                continue
            hit &= alive
            if hit.any():
                trace.extend(decide(c, i, "removed") for i in items[hit])
                alive &= ~hit
        kept, new_scores = items[alive], scores[alive].copy()
        if boost:
            trace.extend(self._boost(ctx, kept, new_scores))
        return SafetyResult(kept, new_scores, tuple(trace))

    def adjust_scores(self, ctx: RecContext, items: IntArray, scores: FloatArray) -> SafetyResult:
        """Boosts and buries only (e.g. on the ranker's scores); nothing is added or removed."""
        self._sync()
        items = np.asarray(items, dtype=np.int64)
        new_scores = np.asarray(scores, dtype=np.float64).copy()
        trace = self._boost(ctx, items, new_scores)
        return SafetyResult(items, new_scores, tuple(trace))

    def _boost(self, ctx: RecContext, items: IntArray, scores: FloatArray) -> list[Decision]:
        trace: list[Decision] = []
        for c in self._active(ctx, self._score):
            assert c.applies is not None
            hit = c.applies[items]
            if hit.any():
                rule = c.rule
                scores[hit] = scores[hit] * rule.multiply + rule.add  # type: ignore[union-attr]
                action = "boosted" if rule.type == "boost" else "buried"
                trace.extend(decide(c, i, action) for i in items[hit])
        return trace

    def _hits(self, c: Compiled, ctx: RecContext, items: IntArray) -> BoolArray | None:
        rule = c.rule
        if isinstance(rule, PairingRule):
            around = {
                "viewed": ctx.context_items,
                "cart": ctx.cart_items,
                "any": (*ctx.context_items, *ctx.cart_items),
            }[rule.on]
            if not around:
                return None
            if c.context is not None and not c.context[np.asarray(around, dtype=np.int64)].any():
                return None
            hit = np.zeros(len(items), dtype=bool)
            if c.remove is not None:
                hit |= c.remove[items]
            if c.keep is not None:
                hit |= ~c.keep[items]
            return hit
        if isinstance(rule, PriceRelationRule):
            return self._price_hits(c, rule, ctx, items)
        assert c.remove is not None
        return c.remove[items]

    def _price_hits(
        self, c: Compiled, rule: PriceRelationRule, ctx: RecContext, items: IntArray
    ) -> BoolArray | None:
        price = self.snapshot.price
        if rule.anchor == "viewed":
            if not ctx.context_items:
                return None
            anchor = float(price[ctx.context_items[0]])
        else:
            if not ctx.cart_items:
                return None
            cart = price[np.asarray(ctx.cart_items, dtype=np.int64)]
            anchor = float(np.nansum(cart) if rule.anchor == "cart_total" else np.nanmax(cart))
        if not np.isfinite(anchor) or anchor <= 0:
            return None
        p = price[items]
        bad = np.isnan(p)
        if rule.min_ratio is not None:
            bad |= p < rule.min_ratio * anchor
        if rule.max_ratio is not None:
            bad |= p > rule.max_ratio * anchor
        if c.applies is not None:
            bad &= c.applies[items]
        return bad

    def arrange(
        self, ctx: RecContext, ranked_items: IntArray, scores: FloatArray, k: int
    ) -> ArrangeResult:
        """De-duplicate variants, place pins, fill up to ``k`` under the caps (ranked order kept)."""
        self._sync()
        active = self._active(ctx, self._arrange)
        ranked = np.asarray(ranked_items, dtype=np.int64)
        return arrange(self.snapshot, ctx, ranked, k, active, self.apply_safety)
