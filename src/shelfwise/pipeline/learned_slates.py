"""Served slates of the learned ranker, kept per (context, time bucket, exploration pick).

Within a time bucket (``ranking.time_bucket_seconds``) a context's candidates and
scored order are fixed (``pipeline/learned.py``); what still differs between two
requests of the context is the exploration draw, which each request makes from the
scored order's plan with its own seed. So the slate a pick leads to is kept: a
request draws its pick (:meth:`LearnedShelf.pick`, the very draw the rank stage
would make) and is served the slate kept for it, or computes it (and keeps it).
Every served slate keeps a true propensity: the pick is drawn per request, and
its propensity is the plan's.

Entries are checked on every read like the slate cache's (``pipeline/kept.py``,
``pipeline/slates.py``): the stamp (catalog size, bundle, rulebook version,
ranker) and the products an entry is made of (its candidates before any rule,
the viewed, carted and session items, the rulebook's pins); the key holds the
context at its bucket's clock, ``k`` and which of the rulebook's time windows are
open. At most ``MAX_PICKS`` slates are kept per context (the first picks made,
which are the likely ones); a pick beyond them is computed from the kept order
each time. Memory: ~9 KB of slates a context on the benchmark store (a context
sees few distinct picks in one bucket), ~74 KB a context with its kept
candidates and order (``benchmarks/kept_memory.py``; ~90 KB of RSS, docs/ranking.md).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

from shelfwise.candidates.base import IntArray, RecContext
from shelfwise.catalog import CatalogSnapshot
from shelfwise.pipeline.kept import KeptStore, depends_on
from shelfwise.pipeline.learned import (
    KeptOrders,
    LearnedShelf,
    at_bucket,
    context_items,
    context_key,
    pick_of,
    scored_key,
)
from shelfwise.pipeline.ports import Plan
from shelfwise.pipeline.slates import KeptSlate, windows_open
from shelfwise.ranking.objective import PlacementObjective
from shelfwise.ranking.ranker import Ranker
from shelfwise.rules import Rulebook

MAX_PICKS = 16


@dataclass(frozen=True)
class Shelved:
    """One request's place in the learned slates."""

    key: Hashable
    stamp: Hashable
    ctx: RecContext  # at its bucket's clock
    ranker: Ranker
    k: int
    seed: int  # the request's exploration seed


class LearnedSlates(KeptStore[LearnedShelf]):
    def shelved(
        self,
        ctx: RecContext,
        k: int,
        ranker: Ranker,
        bucket: int,
        book: Rulebook | None,
        versions: tuple[Hashable, ...],
        seed: int,
    ) -> Shelved:
        at = at_bucket(ctx, bucket)
        key = (*context_key(at), k, windows_open(book, ctx.now))
        return Shelved(key, (*versions, ranker.version), at, ranker, k, seed)

    def served(self, s: Shelved, snapshot: CatalogSnapshot) -> KeptSlate | None:
        """The slate kept for this request's exploration pick, if any."""
        shelf = self.get(s.key, s.stamp, snapshot.changed_seq)
        if shelf is None:
            return None
        kept: KeptSlate | None = shelf.answers.get(shelf.pick(pick_of(s.ranker, s.ctx, s.seed)))
        return kept

    def keep(
        self,
        s: Shelved,
        slate: KeptSlate,
        orders: KeptOrders,
        plan: Plan,
        objective: PlacementObjective,
        snapshot: CatalogSnapshot,
        candidates: IntArray,
        pins: IntArray,
        seq: int,
    ) -> None:
        """Keep ``slate``, computed for this request, under its pick."""
        got = orders.scored.get(
            scored_key(s.ctx, s.k, plan, objective),
            (len(snapshot), s.ranker.version),
            snapshot.changed_seq,
        )
        if got is None:
            return  # the order was not kept: nothing says which pick this is
        shelf = self.get(s.key, s.stamp, snapshot.changed_seq)
        if shelf is None:
            shelf = LearnedShelf.of(got[1])
            deps = depends_on(candidates, *context_items(s.ctx), pins)
            self.put(s.key, s.stamp, shelf, deps, seq)
        pick = shelf.pick(pick_of(s.ranker, s.ctx, s.seed))
        if pick in shelf.answers or len(shelf.answers) < MAX_PICKS:
            shelf.answers[pick] = slate
