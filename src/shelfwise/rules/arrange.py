"""Arrangement after ranking: variant de-duplication, pins, diversity caps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from shelfwise.candidates.base import IntArray, RecContext
from shelfwise.catalog import CatalogSnapshot
from shelfwise.rules.compiled import Compiled
from shelfwise.rules.masks import BoolArray
from shelfwise.rules.model import CapRule, DedupeVariantsRule, PinRule
from shelfwise.rules.trace import ArrangeResult, SafetyResult, TraceChunk, decide

SafetyCheck = Callable[..., SafetyResult]


def arrange(
    snapshot: CatalogSnapshot,
    ctx: RecContext,
    ranked: IntArray,
    k: int,
    active: list[Compiled],
    safety: SafetyCheck,
) -> ArrangeResult:
    trace: list[TraceChunk] = []
    groups = snapshot.variant_group
    dedupe = [c for c in active if isinstance(c.rule, DedupeVariantsRule)]
    pin_rules = [c for c in active if isinstance(c.rule, PinRule)]
    pins = _pins(ctx, k, pin_rules, safety, trace, set(ranked.tolist())) if pin_rules else {}
    pool = ranked
    if pins:  # pins first: a served pin is never traced as a variant that lost to another
        pinned = np.fromiter(pins.values(), dtype=np.int64)
        pool = pool[~_among(pool, pinned)]
        if dedupe:
            clash = _among(groups[pool], groups[pinned]) & (groups[pool] != 0)
            if clash.any():
                trace.append(decide(dedupe[0], pool[clash], "deduped", "variant of a pinned item"))
            pool = pool[~clash]
    if dedupe:
        pool = _dedupe(pool, groups, ctx, dedupe, trace)
    caps = [c for c in active if isinstance(c.rule, CapRule)]
    fill = _fill(pool, k - len(pins), caps, list(pins.values()), trace)
    slate: list[int] = []
    rest = iter(fill)
    for slot in range(k):
        if slot in pins:
            slate.append(pins[slot])
        else:
            nxt = next(rest, None)
            if nxt is not None:
                slate.append(nxt)
    slate.extend(pins[s] for s in sorted(pins) if pins[s] not in slate)
    return ArrangeResult(tuple(trace), np.asarray(slate[:k], dtype=np.int64))


def _dedupe(
    ranked: IntArray,
    groups: npt.NDArray[np.int32],
    ctx: RecContext,
    rules: list[Compiled],
    trace: list[TraceChunk],
) -> IntArray:
    g = groups[ranked]
    keep = np.zeros(len(ranked), dtype=bool)
    _, first = np.unique(g, return_index=True)
    keep[first] = True
    keep |= g == 0
    first_rule = rules[0]
    if not keep.all():
        trace.append(decide(first_rule, ranked[~keep], "deduped", "another variant ranks higher"))
    with_context = [c for c in rules if c.rule.include_context]  # type: ignore[union-attr]
    if with_context and ctx.context_items:
        around = groups[np.asarray(ctx.context_items, dtype=np.int64)]
        clash = keep & _among(g, around[around != 0])
        if clash.any():
            trace.append(
                decide(with_context[0], ranked[clash], "deduped", "variant of the viewed item")
            )
        keep &= ~clash
    return ranked[keep]


def _among(
    values: npt.NDArray[np.int64] | npt.NDArray[np.int32], few: npt.NDArray[Any]
) -> BoolArray:
    """``np.isin`` for a handful of values, without its fixed cost."""
    out = np.zeros(len(values), dtype=bool)
    for v in few.tolist():
        out |= values == v
    return out


def _pins(
    ctx: RecContext,
    k: int,
    rules: list[Compiled],
    safety: SafetyCheck,
    trace: list[TraceChunk],
    safe: set[int],
) -> dict[int, int]:
    """Slot (0-based) -> item for every pin that passes the safety rules (ranked items
    already did; any other pinned item is checked on its own)."""
    pins: dict[int, int] = {}
    for c in sorted(rules, key=lambda c: (-c.rule.priority, c.rule.id)):
        item = c.pin_index
        if item is None or item in pins.values() or item in ctx.context_items:
            continue
        if item in ctx.exclude or item in ctx.cart_items:
            continue
        check = None if item in safe else safety(ctx, np.array([item]), np.zeros(1), boost=False)
        if check is not None and len(check.items) == 0:
            blocker = check.trace[0].rule_id if check.trace else "?"
            trace.append(decide(c, item, "pin_blocked", f"removed by {blocker}"))
            continue
        slot = c.rule.position - 1  # type: ignore[union-attr]
        while slot in pins:
            slot += 1
        if slot >= k:
            continue
        pins[slot] = item
        trace.append(decide(c, item, "pinned", f"position {slot + 1}"))
    return pins


def _fill(
    pool: IntArray, need: int, caps: list[Compiled], pinned: list[int], trace: list[TraceChunk]
) -> list[int]:
    if need <= 0:
        return []
    if not caps:
        return [int(i) for i in pool[:need]]
    keys = [c.keys[pool].tolist() for c in caps]  # type: ignore[index]
    counts: list[dict[int, int]] = [{} for _ in caps]
    for ci, c in enumerate(caps):
        assert c.keys is not None
        for item in pinned:
            key = int(c.keys[item])
            counts[ci][key] = counts[ci].get(key, 0) + 1
    limits = [c.rule.max_items for c in caps]  # type: ignore[union-attr]
    capped: list[list[int]] = [[] for _ in caps]
    out: list[int] = []
    for j, item in enumerate(pool.tolist()):
        blocked = -1
        for ci in range(len(caps)):
            key = keys[ci][j]
            if key and counts[ci].get(key, 0) >= limits[ci]:
                blocked = ci
                break
        if blocked >= 0:
            capped[blocked].append(item)
            continue
        for ci in range(len(caps)):
            key = keys[ci][j]
            counts[ci][key] = counts[ci].get(key, 0) + 1
        out.append(item)
        if len(out) == need:
            break
    trace.extend(
        decide(c, np.array(got), "capped") for c, got in zip(caps, capped, strict=True) if got
    )
    return out
