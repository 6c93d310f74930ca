"""Arrangement after ranking: variant de-duplication, pins, diversity caps."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from shelfwise.candidates.base import IntArray, RecContext
from shelfwise.catalog import CatalogSnapshot
from shelfwise.rules.compiled import Compiled
from shelfwise.rules.model import CapRule, DedupeVariantsRule, PinRule
from shelfwise.rules.trace import ArrangeResult, Decision, SafetyResult, decide

SafetyCheck = Callable[..., SafetyResult]


def arrange(
    snapshot: CatalogSnapshot,
    ctx: RecContext,
    ranked: IntArray,
    k: int,
    active: list[Compiled],
    safety: SafetyCheck,
) -> ArrangeResult:
    trace: list[Decision] = []
    groups = snapshot.variant_group
    dedupe = [c for c in active if isinstance(c.rule, DedupeVariantsRule)]
    pool = _dedupe(ranked, groups, ctx, dedupe, trace) if dedupe else ranked
    pins = _pins(ctx, k, [c for c in active if isinstance(c.rule, PinRule)], safety, trace)
    if pins:
        pinned = np.fromiter(pins.values(), dtype=np.int64)
        pool = pool[~np.isin(pool, pinned)]
        if dedupe:
            clash = np.isin(groups[pool], groups[pinned]) & (groups[pool] != 0)
            trace.extend(
                decide(dedupe[0], i, "deduped", "variant of a pinned item") for i in pool[clash]
            )
            pool = pool[~clash]
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
    return ArrangeResult(np.asarray(slate[:k], dtype=np.int64), tuple(trace))


def _dedupe(
    ranked: IntArray,
    groups: npt.NDArray[np.int32],
    ctx: RecContext,
    rules: list[Compiled],
    trace: list[Decision],
) -> IntArray:
    g = groups[ranked]
    keep = np.zeros(len(ranked), dtype=bool)
    _, first = np.unique(g, return_index=True)
    keep[first] = True
    keep |= g == 0
    first_rule = rules[0]
    trace.extend(
        decide(first_rule, i, "deduped", "another variant ranks higher") for i in ranked[~keep]
    )
    with_context = [c for c in rules if c.rule.include_context]  # type: ignore[union-attr]
    if with_context and ctx.context_items:
        around = groups[np.asarray(ctx.context_items, dtype=np.int64)]
        clash = keep & np.isin(g, around[around != 0])
        trace.extend(
            decide(with_context[0], i, "deduped", "variant of the viewed item")
            for i in ranked[clash]
        )
        keep &= ~clash
    return ranked[keep]


def _pins(
    ctx: RecContext, k: int, rules: list[Compiled], safety: SafetyCheck, trace: list[Decision]
) -> dict[int, int]:
    """Slot (0-based) -> item for every pin that passes the safety rules."""
    pins: dict[int, int] = {}
    for c in sorted(rules, key=lambda c: (-c.rule.priority, c.rule.id)):
        item = c.pin_index
        if item is None or item in pins.values() or item in ctx.context_items:
            continue
        if item in ctx.exclude or item in ctx.cart_items:
            continue
        check = safety(ctx, np.array([item], dtype=np.int64), np.zeros(1), boost=False)
        if len(check.items) == 0:
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
    pool: IntArray, need: int, caps: list[Compiled], pinned: list[int], trace: list[Decision]
) -> list[int]:
    if need <= 0:
        return []
    if not caps:
        return [int(i) for i in pool[:need]]
    keys = [c.keys[pool] for c in caps]  # type: ignore[index]
    counts: list[dict[int, int]] = [{} for _ in caps]
    for ci, c in enumerate(caps):
        assert c.keys is not None
        for item in pinned:
            key = int(c.keys[item])
            counts[ci][key] = counts[ci].get(key, 0) + 1
    out: list[int] = []
    for j, item in enumerate(pool.tolist()):
        blocked = None
        for ci, c in enumerate(caps):
            key = int(keys[ci][j])
            if key and counts[ci].get(key, 0) >= c.rule.max_items:  # type: ignore[union-attr]
                blocked = c
                break
        if blocked is not None:
            trace.append(decide(blocked, item, "capped"))
            continue
        for ci in range(len(caps)):
            key = int(keys[ci][j])
            counts[ci][key] = counts[ci].get(key, 0) + 1
        out.append(item)
        if len(out) == need:
            break
    return out
