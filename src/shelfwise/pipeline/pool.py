"""The candidate pool that flows through the stages, and the trace they leave.

Items are dense catalog indices. Every stage returns a new pool (or a mask over
it) and appends what it decided to the :class:`Trace`, so a slate can always
answer "why was this shown, and why was that not?". Reasons are kept as one
table plus an index array, so restricting a pool never loops in Python.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np
import numpy.typing as npt

from shelfwise.candidates.base import FloatArray, IntArray, Proposal, Reason, RecContext
from shelfwise.candidates.neighbours import drop_excluded, excluded
from shelfwise.catalog import CatalogSnapshot

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Pool:
    """Unique candidates with their best normalised source score and that source's reason."""

    items: IntArray
    score: FloatArray  # in (0, 1]: the proposing source's score over its best, weighted
    hits: IntArray  # how many sources proposed the item
    reason_of: IntArray  # index into ``reason_table``
    reason_table: tuple[Reason, ...]
    sources: tuple[str, ...]  # the sources that answered, in order asked

    def __len__(self) -> int:
        return len(self.items)

    def reason(self, position: int) -> Reason:
        return self.reason_table[int(self.reason_of[position])]

    @property
    def reasons(self) -> list[Reason]:
        return [self.reason_table[i] for i in self.reason_of.tolist()]

    @classmethod
    def empty(cls) -> Pool:
        return cls(
            np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64), (), ()
        )

    def take(self, keep: IntArray | BoolArray) -> Pool:
        """The pool restricted to ``keep`` (positions or a mask), order kept."""
        return Pool(
            self.items[keep],
            self.score[keep],
            self.hits[keep],
            self.reason_of[keep],
            self.reason_table,
            self.sources,
        )

    @classmethod
    def union(
        cls,
        proposals: list[Proposal],
        exclude: frozenset[int] = frozenset(),
        weights: dict[str, float] | None = None,
    ) -> Pool:
        """One entry per item: its best normalised score and the reason that came with it.

        ``weights`` scale a source's normalised scores (fallback sources get less).
        The pool comes out best score first.
        """
        weights = weights or {}
        proposals = [p for p in proposals if len(p.items)]
        if not proposals:
            return cls.empty()
        items = np.concatenate([p.items for p in proposals])
        scores = np.concatenate(
            [_normalise(p.scores) * weights.get(p.source, 1.0) for p in proposals]
        )
        table = tuple(chain.from_iterable(p.reasons for p in proposals))
        order = np.argsort(-scores, kind="stable")
        ranked = items[order]
        uniq, first, counts = np.unique(ranked, return_index=True, return_counts=True)
        if exclude:
            keep = drop_excluded(uniq, excluded(exclude))
            uniq, first, counts = uniq[keep], first[keep], counts[keep]
        by_score = np.argsort(first)
        pick = order[first[by_score]]
        return cls(
            uniq[by_score],
            scores[pick],
            counts[by_score],
            pick,
            table,
            tuple(p.source for p in proposals),
        )


def _normalise(scores: FloatArray) -> FloatArray:
    """Scores of one proposal onto (0, 1], order kept: positive scores over the best one
    (floored at 0.05); scores <= 0 (fallback fill, below every blended item) share (0, 0.05]."""
    top = float(scores.max())
    if top > 1e-9:
        out = np.clip(scores / top, 0.05, 1.0)
        low = scores <= 0
    else:
        out = np.empty_like(scores)
        low = np.ones(len(scores), dtype=bool)
    if low.any():
        out[low] = 0.05 / (1.0 + (float(scores[low].max()) - scores[low]))
    return out


@dataclass
class Trace:
    """What each stage decided, kept for ``explain=true`` and the decision log."""

    enabled: bool = True
    stages: dict[str, float] = field(default_factory=dict)  # stage -> milliseconds
    candidates: dict[str, int] = field(default_factory=dict)  # source -> proposed
    fallback_used: list[str] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)
    drops: dict[str, int] = field(default_factory=dict)  # rule -> items removed
    notes: list[str] = field(default_factory=list)
    # What the rules saw, for replays (the rules' impact preview): scope and the
    # blended candidates before any rule, best first.
    rule_scope: str | None = None
    pool: list[list[Any]] = field(default_factory=list)  # [product_id, score]
    # The resolved request the stages saw (person, session, cart, excluded items):
    # with the pool, what a replay needs to run the same pipeline again.
    context: dict[str, Any] = field(default_factory=dict)
    # The person's one-off past purchases the context left out (``context.exclude``
    # has them too): why a product they bought is not shown to them.
    owned: list[str] = field(default_factory=list)
    # How the pool was ranked: the blend, or the learned ranker with its model and
    # objective versions and, per served item, P(engagement), value, contributions.
    ranker: dict[str, Any] = field(default_factory=lambda: {"kind": "blend"})
    # A slate the rules left short from a pool cut at ``max_candidates``, made again over
    # a deeper pool (``Pipeline.run``): the sizes, and the served items the first pool
    # did not hold (each shown with its own source's reason). Empty otherwise.
    deepened: dict[str, Any] = field(default_factory=dict)

    def adopt(self, other: Trace) -> None:
        """Take ``other``'s decisions as this trace's (the stages ran again into it);
        this trace's notes, context and stage times stay, ``other``'s are added."""
        self.candidates = other.candidates
        self.fallback_used = other.fallback_used
        self.rules = other.rules
        self.drops = other.drops
        self.rule_scope = other.rule_scope
        self.pool = other.pool
        self.owned = other.owned or self.owned
        self.ranker = other.ranker
        self.notes.extend(n for n in other.notes if n not in self.notes)
        for stage, ms in other.stages.items():
            self.stages[stage] = self.stages.get(stage, 0.0) + ms

    def keep_pool(self, pool: Pool, snapshot: CatalogSnapshot, rule_scope: str) -> None:
        if self.enabled:
            ids = snapshot.ids
            self.rule_scope = rule_scope
            self.pool = [
                [ids[i], round(s, 6)]
                for i, s in zip(pool.items.tolist(), pool.score.tolist(), strict=True)
            ]

    def keep_context(self, ctx: RecContext, snapshot: CatalogSnapshot) -> None:
        if self.enabled:
            ids = snapshot.ids
            self.context = {
                "person": ctx.person_id,
                "items": [ids[i] for i in ctx.context_items],
                "cart": [ids[i] for i in ctx.cart_items],
                "session": [[ids[e.item], e.type, e.at.timestamp()] for e in ctx.session],
                "exclude": sorted(ids[i] for i in ctx.exclude),
                "segment": dict(ctx.segment),
            }

    def drop(
        self,
        rule: str,
        items: IntArray,
        snapshot: CatalogSnapshot,
        reason: str,
        version: str | None = None,
    ) -> None:
        """Count items a rule removed; name every one of them when tracing (GET
        /v1/decisions/{rec_id} pages long lists)."""
        if not len(items):
            return
        self.drops[rule] = self.drops.get(rule, 0) + len(items)
        if self.enabled:
            ids = snapshot.ids
            self.rules.append(
                {
                    "rule": rule,
                    "version": version,
                    "action": "remove",
                    "count": len(items),
                    "items": [ids[i] for i in items.tolist()],
                    "reason": reason,
                }
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "stages_ms": self.stages,
            "candidates": self.candidates,
            "fallback_used": self.fallback_used,
            "rules": self.rules,
            "drops": self.drops,
            "notes": self.notes,
            "rule_scope": self.rule_scope,
            "pool": self.pool,
            "context": self.context,
            "owned": self.owned,
            "ranker": self.ranker,
            **({"deepened": self.deepened} if self.deepened else {}),
        }
