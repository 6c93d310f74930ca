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
    DedupeVariantsRule,
    PairingRule,
    PinRule,
    PriceRelationRule,
    Rule,
)
from shelfwise.rules.trace import ArrangeResult, SafetyResult, TraceChunk, decide

STATIC_TYPES = ("require_in_stock", "exclude", "suppress", "margin_floor")


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
        self._stack: BoolArray = np.zeros((0, 0), dtype=bool)
        self._boost_stack: BoolArray = np.zeros((0, 0), dtype=bool)
        self._score: list[Compiled] = []
        self._arrange: list[Compiled] = []
        self._pin_items: IntArray = np.zeros(0, dtype=np.int64)
        # The last request's verdicts on the pinned products, made with its candidates'
        # (``_checked``): (context, compiled state, active rules, item -> its hits column).
        self._pin_hits: tuple[RecContext, object, list[Compiled], dict[int, BoolArray]] | None = (
            None
        )

    def pinned(self) -> tuple[str, ...]:
        """The products the pin rules place (whatever their scope or window)."""
        return tuple(r.product_id for r in self.rules if isinstance(r, PinRule))

    def _sync(self) -> None:
        self.masks.sync()
        state = self.masks.state
        if state == self._state:
            return
        compiled = [compile_rule(r, self.masks) for r in self.rules]
        if self.in_stock_default:
            compiled.insert(0, compile_rule(BUILTIN_IN_STOCK, self.masks, default=True))
        self._safety = [c for c in compiled if c.rule.type in SAFETY_TYPES]
        static = [c for c in self._safety if c.rule.type in STATIC_TYPES]
        for col, c in enumerate(static):
            c.col = col
        n = self.masks.n
        self._stack = (
            np.ascontiguousarray(
                np.column_stack([c.remove for c in static if c.remove is not None])
            )
            if static
            else np.zeros((n, 0), dtype=bool)
        )
        self._score = [c for c in compiled if c.rule.type in SCORE_TYPES]
        for col, c in enumerate(self._score):
            c.col = col
        self._boost_stack = (
            np.ascontiguousarray(
                np.column_stack([c.applies for c in self._score if c.applies is not None])
            )
            if self._score
            else np.zeros((n, 0), dtype=bool)
        )
        self._arrange = [c for c in compiled if c.rule.type not in (*SAFETY_TYPES, *SCORE_TYPES)]
        pins = {c.pin_index for c in self._arrange if c.pin_index is not None}
        self._pin_items = np.array(sorted(pins), dtype=np.int64)
        self._pin_hits = None
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
        active, hits = self._checked(ctx, items)
        trace: list[TraceChunk] = []
        removed = np.logical_or.reduce(hits, axis=0) if len(active) else np.zeros(len(items), bool)
        if removed.any():
            gone = np.flatnonzero(removed)
            first = hits[:, gone].T.argmax(axis=1)  # the first rule in order takes the credit
            order = np.argsort(first, kind="stable")
            first, gone = first[order], gone[order]
            starts = np.flatnonzero(np.concatenate(([True], first[1:] != first[:-1])))
            ends = np.append(starts[1:], len(first))
            for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
                trace.append(decide(active[int(first[s])], items[np.sort(gone[s:e])], "removed"))
        alive = ~removed
        kept, new_scores = items[alive], scores[alive].copy()
        if boost:
            trace.extend(self._boost(ctx, kept, new_scores))
        return SafetyResult(tuple(trace), kept, new_scores)

    def _checked(self, ctx: RecContext, items: IntArray) -> tuple[list[Compiled], BoolArray]:
        """The active safety rules and which of ``items`` each one hits (rules x items).

        A request's pinned products are checked with its candidates, in the same pass
        (each item's verdict is its own column), and kept for the arrangement's check
        of a pin the candidates did not hold: one item, the same context object."""
        memo = self._pin_hits
        if len(items) == 1 and memo is not None and memo[0] is ctx and memo[1] is self._state:
            got = memo[3].get(int(items[0]))
            if got is not None:
                return memo[2], got[:, None]
        active = self._active(ctx, self._safety)
        pins = self._pin_items if len(items) > 1 else items[:0]
        every = np.concatenate([items, pins]) if len(pins) else items
        # One row per active rule, in evaluation order (rows x items keeps every numpy
        # reduction running along the long axis); static rules come from the
        # pre-stacked catalog matrix in one take.
        hits = np.zeros((len(active), len(every)), dtype=bool)
        static = [(j, c.col) for j, c in enumerate(active) if c.col is not None]
        if static and len(every):
            pos, cols = zip(*static, strict=True)
            hits[list(pos)] = _rows(self._stack, every, cols)
        for j, c in enumerate(active):
            if c.col is None:
                hit = self._hits(c, ctx, every)
                if hit is not None:
                    hits[j] = hit
        if len(pins):
            n = len(items)
            columns = {item: hits[:, n + i] for i, item in enumerate(pins.tolist())}
            self._pin_hits = (ctx, self._state, active, columns)
            hits = hits[:, :n]
        return active, hits

    def adjust_scores(self, ctx: RecContext, items: IntArray, scores: FloatArray) -> SafetyResult:
        """Boosts and buries only (e.g. on the ranker's scores); nothing is added or removed."""
        self._sync()
        items = np.asarray(items, dtype=np.int64)
        new_scores = np.asarray(scores, dtype=np.float64).copy()
        trace = self._boost(ctx, items, new_scores)
        return SafetyResult(tuple(trace), items, new_scores)

    def _boost(self, ctx: RecContext, items: IntArray, scores: FloatArray) -> list[TraceChunk]:
        """Apply each active boost/bury ``s -> s * multiply + add`` in order, vectorised:
        the composition of the affine maps is computed with suffix products."""
        active = self._active(ctx, self._score)
        if not active or not len(items):
            return []
        cols = [c.col for c in active if c.col is not None]
        hit = _rows(self._boost_stack, items, cols)  # (rules, items)
        used = np.flatnonzero(hit.any(axis=1)).tolist()
        if not used:
            return []
        mult = np.array([c.rule.multiply for c in active])[:, None]  # type: ignore[union-attr]
        add = np.array([c.rule.add for c in active])[:, None]  # type: ignore[union-attr]
        factor = np.where(hit, mult, 1.0)
        # after[j] = product of the factors of the rules after j
        after = np.ones_like(factor)
        if len(factor) > 1:
            after[:-1] = np.cumprod(factor[:0:-1], axis=0)[::-1]
        scores *= after[0] * factor[0]
        scores += (np.where(hit, add, 0.0) * after).sum(axis=0)
        kinds = {"boost": "boosted", "bury": "buried"}
        return [decide(active[j], items[hit[j]], kinds[active[j].rule.type]) for j in used]

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

    def variant_groups(self, ctx: RecContext, items: IntArray) -> tuple[IntArray, BoolArray]:
        """How :meth:`arrange` de-duplicates ``items`` for ``ctx``, whatever their order:
        each item's variant group (0: none, or no de-duplication in force; of each group
        only the best-ranked item stays) and which items it drops in any order (variants
        of the viewed item). The exposure cap's calibration serves slates as arranged
        (``ranking.exposure.calibrate``)."""
        self._sync()
        dedupe = [
            c for c in self._active(ctx, self._arrange) if isinstance(c.rule, DedupeVariantsRule)
        ]
        items = np.asarray(items, dtype=np.int64)
        if not dedupe:
            return np.zeros(len(items), dtype=np.int64), np.zeros(len(items), dtype=bool)
        groups = self.snapshot.variant_group[items].astype(np.int64)
        dropped = np.zeros(len(items), dtype=bool)
        if any(c.rule.include_context for c in dedupe) and ctx.context_items:  # type: ignore[union-attr]
            around = self.snapshot.variant_group[np.asarray(ctx.context_items, dtype=np.int64)]
            dropped = np.isin(groups, around[around != 0]) & (groups != 0)
        return groups, dropped


def _rows(stack: BoolArray, items: IntArray, cols: Sequence[int]) -> BoolArray:
    """Rows ``cols`` x columns ``items`` of an item-major (catalog x rules) matrix:
    gathering whole item rows first is the cheap direction."""
    block = stack[items]
    if len(cols) != stack.shape[1] or list(cols) != list(range(stack.shape[1])):
        block = block[:, list(cols)]
    out: BoolArray = np.ascontiguousarray(block.T)
    return out
