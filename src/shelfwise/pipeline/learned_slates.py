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
        """The slate kept for this request's exploration pick, if any (through the
        deeper pools its pick's slates were made again over: :class:`Deeper`)."""
        key = s.key
        while True:
            shelf = self.get(key, s.stamp, snapshot.changed_seq)
            if shelf is None:
                return None
            kept = shelf.answers.get(shelf.pick(pick_of(s.ranker, s.ctx, s.seed)))
            if not isinstance(kept, Deeper):
                return kept
            key = (s.key, kept.size)

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
        sizes: tuple[int, ...],
    ) -> None:
        """Keep ``slate``, computed for this request, under its pick. ``sizes``: the
        candidates asked of its chain, run by run (``Slate.sizes``): a run the rules
        left short keeps, under its own pick, where the next, deeper one is kept."""
        deps = depends_on(candidates, *context_items(s.ctx), pins)
        for n, size in enumerate(sizes):
            got = orders.scored.get(
                scored_key(s.ctx, s.k, plan, objective, size),
                (len(snapshot), s.ranker.version),
                snapshot.changed_seq,
            )
            if got is None:
                return  # the order was not kept: nothing says which pick this is
            key: Hashable = s.key if n == 0 else (s.key, size)
            shelf = self.get(key, s.stamp, snapshot.changed_seq)
            if shelf is None:
                shelf = LearnedShelf.of(got[1])
                self.put(key, s.stamp, shelf, deps, seq)
            pick = shelf.pick(pick_of(s.ranker, s.ctx, s.seed))
            answer = slate if n == len(sizes) - 1 else Deeper(sizes[n + 1])
            if pick in shelf.answers or len(shelf.answers) < MAX_PICKS:
                shelf.answers[pick] = answer
            else:
                return


@dataclass(frozen=True)
class Deeper:
    """A pick whose slate the rules left short: it was made again over ``size``
    candidates, whose shelf holds it (under that run's own pick)."""

    size: int
