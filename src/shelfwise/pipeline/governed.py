"""The merchant's rulebook in the request path: safety before ranking, arrangement after.

Rules see the request with ``placement`` set to the placement's ``rule_scope``
(both product-page slates share ``product_page`` rules) and ``now`` as the
request's clock, so suppression windows open and close on the next request.
Every decision the rulebook traces is kept (named items capped per rule).

The rulebook is two stages of the pipeline: :class:`RulebookSafety` (the rules
stage) and :class:`RulebookArrange` (the arrangement). A rulebook without rules
is a rulebook like any other: its built-in in-stock rule still applies.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from sqlalchemy.exc import SQLAlchemyError

from shelfwise.candidates.base import FloatArray, IntArray, Reason, RecContext
from shelfwise.candidates.neighbours import member
from shelfwise.catalog import CatalogSnapshot
from shelfwise.pipeline.defaults import exploration, explore
from shelfwise.pipeline.pool import Pool, Trace
from shelfwise.pipeline.ports import Arranged, Flow, StageName
from shelfwise.rules import Rulebook
from shelfwise.rules.trace import TraceChunk

log = logging.getLogger("shelfwise.pipeline")

DROPPING = frozenset({"removed", "deduped", "capped"})


class Governor:
    """The current rulebook, or the last good one while the store is unreachable."""

    def __init__(self, current: Callable[[], Rulebook]) -> None:
        self._current = current
        self._last: Rulebook | None = None

    def book(self, trace: Trace, rules_seq: int | None = None) -> Rulebook | None:
        """``rules_seq``: the rule store's version as just read with the catalog clock;
        when it matches the loaded rulebook, the store is not asked again. None means
        the clock found the store unreachable (it retries every few seconds): the
        last rulebook is served without asking, so a hung store does not make every
        request wait for its connect timeout."""
        last = self._last
        if last is not None and (rules_seq is None or last.version == rules_seq):
            if rules_seq is None:
                trace.notes.append("rule store unreachable: serving the last rulebook loaded")
            return last
        try:
            self._last = self._current()
        except SQLAlchemyError:
            trace.notes.append("rule store unreachable: serving the last rulebook loaded")
        return self._last


@dataclass(frozen=True)
class _RulebookStage:
    book: Rulebook

    @property
    def version(self) -> str:
        """The rulebook's version, stamped on every slate it shaped."""
        return str(self.book.version)

    @staticmethod
    def scoped(flow: Flow) -> RecContext:
        """The request as the rules see it: the placement's rule scope."""
        return flow.rules_ctx or replace(flow.ctx, placement=flow.plan.placement.rule_scope)


@dataclass(frozen=True)
class RulebookSafety(_RulebookStage):
    """The rules stage: what the rulebook forbids leaves the pool before ranking."""

    name: StageName = "safety"

    def run(self, flow: Flow) -> Flow:
        rules_ctx = self.scoped(flow)
        pool = safety(self.book, rules_ctx, flow.pool, flow.snapshot, flow.trace)
        return flow._replace(pool=pool, rules_ctx=rules_ctx)


@dataclass(frozen=True)
class RulebookArrange(_RulebookStage):
    """The arrangement: exploration slots, then the rulebook's pins, de-duplication and caps."""

    name: StageName = "arrange"

    def run(self, flow: Flow) -> Flow:
        ranked = flow.ranked
        assert ranked is not None, "the rank stage runs first"
        rules_ctx = self.scoped(flow)
        share = exploration(flow.plan.placement, ranked)
        pool, arranged = arrange(
            self.book,
            rules_ctx,
            flow.pool,
            ranked.value,
            flow.k,
            share,
            flow.snapshot,
            flow.trace,
            flow.seed,
        )
        return flow._replace(pool=pool, arranged=arranged)


def record(trace: Trace, chunks: Sequence[TraceChunk], snapshot: CatalogSnapshot) -> None:
    """Rule decisions into the trace: grouped per (rule, version, action, reason).

    Works on the rulebook's chunks (one rule, one action, an array of items) rather than
    on one ``Decision`` per item, which cost more than the rules themselves."""
    groups: dict[tuple[str, int, str, str], list[IntArray]] = defaultdict(list)
    for ch in chunks:
        if len(ch.items):
            groups[(ch.rule_id, ch.version, ch.action, ch.reason)].append(ch.items)
    ids = snapshot.ids
    for (rule, version, action, reason), parts in groups.items():
        count = sum(len(p) for p in parts)
        if action in DROPPING:
            trace.drops[rule] = trace.drops.get(rule, 0) + count
        if trace.enabled:
            named = (parts[0] if len(parts) == 1 else np.concatenate(parts)).tolist()
            trace.rules.append(
                {
                    "rule": rule,
                    "version": version,
                    "action": action,
                    "count": count,
                    "items": [ids[i] for i in named],
                    "reason": reason,
                }
            )


def safety(
    book: Rulebook, ctx: RecContext, pool: Pool, snapshot: CatalogSnapshot, trace: Trace
) -> Pool:
    """What the rules forbid leaves the pool; boosts and buries rescale the survivors."""
    result = book.apply_safety(ctx, pool.items, pool.score)
    record(trace, result.chunks, snapshot)
    kept = pool if len(result.items) == len(pool) else pool.take(member(pool.items, result.items))
    return Pool(
        kept.items, result.scores, kept.hits, kept.reason_of, kept.reason_table, kept.sources
    )


def arrange(
    book: Rulebook,
    ctx: RecContext,
    pool: Pool,
    value: FloatArray,
    k: int,
    exploration: float,
    snapshot: CatalogSnapshot,
    trace: Trace,
    seed: int,
) -> tuple[Pool, Arranged]:
    """Exploration picks its slots first; the rulebook then pins, de-duplicates and caps.

    Returns the pool (grown by pinned items it did not hold) and the final order.
    """
    order = np.argsort(-value, kind="stable")
    explored = explore(order, k, exploration, seed)
    drawn = explored.order[explored.explored]
    if len(drawn):
        rest = order[~member(order, explored.order)]
        order = np.concatenate([explored.order, rest])
    result = book.arrange(ctx, pool.items[order], value[order], k)
    record(trace, result.chunks, snapshot)
    pool = _with_pins(pool, result.items)
    positions = _positions(pool.items, result.items)
    is_explored = member(positions, drawn)
    propensity = np.where(is_explored, explored.propensity[-1] if len(drawn) else 1.0, 1.0)
    return pool, Arranged(positions, is_explored, propensity)


def _with_pins(pool: Pool, slate: IntArray) -> Pool:
    extra = slate[~member(slate, pool.items)]
    if not len(extra):
        return pool
    reason = Reason("rules", "pinned", label="featured")
    n = len(extra)
    return Pool(
        np.concatenate([pool.items, extra]),
        np.concatenate([pool.score, np.zeros(n)]),
        np.concatenate([pool.hits, np.zeros(n, np.int64)]),
        np.concatenate([pool.reason_of, np.full(n, len(pool.reason_table), np.int64)]),
        (*pool.reason_table, reason),
        pool.sources,
    )


def _positions(items: IntArray, wanted: IntArray) -> IntArray:
    sorter = np.argsort(items)
    return sorter[np.searchsorted(items, wanted, sorter=sorter)]
