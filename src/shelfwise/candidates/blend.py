"""The candidate blend of a placement: weighted sources first, then labelled fallbacks.

Each blended source's scores are divided by its best score, multiplied by the
source's weight and summed per item; an item keeps the reason of the source
that contributed most. When the blend yields fewer than ``k`` items, the
placement's fallback sources fill the rest in order, each slot saying so
(``Reason.fallback``). One exclude set is shared by every step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import chain

import numpy as np

from shelfwise.candidates.base import FloatArray, IntArray, Proposal, Reason, RecContext, Source
from shelfwise.candidates.buyagain import NO_ITEMS, BuyAgainSource
from shelfwise.candidates.config import PlacementChain, SourcesConfig
from shelfwise.candidates.neighbours import member, top_k


def blend(proposals: list[tuple[Proposal, float]], k: int, name: str = "blend") -> Proposal:
    """Weighted sum of max-scaled scores over proposals; the strongest contribution's reason."""
    parts = [(p, w) for p, w in proposals if len(p.items) and w > 0]
    if not parts:
        return Proposal.empty(name)
    items = np.concatenate([p.items for p, _ in parts])
    contrib = np.concatenate([w * p.scores / (np.abs(p.scores).max() or 1.0) for p, w in parts])
    reasons = list(chain.from_iterable(p.reasons for p, _ in parts))
    order = np.lexsort((-contrib, items))
    items_s, contrib_s = items[order], contrib[order]
    starts = np.flatnonzero(np.concatenate(([True], items_s[1:] != items_s[:-1])))
    totals = np.add.reduceat(contrib_s, starts)
    top = top_k(totals, k)
    return Proposal(
        name,
        items_s[starts[top]],
        totals[top],
        tuple(map(reasons.__getitem__, order[starts[top]].tolist())),
    )


@lru_cache(maxsize=65_536)
def _as_fallback(reason: Reason) -> Reason:
    """``reason`` marked as a fallback's (remembered: a fallback fills up to a few
    hundred slots of every request with the same few reasons)."""
    return replace(reason, fallback=True)


# (source name, context, depth) -> that source's proposal
Asker = Callable[[str, RecContext, int], Proposal]


@dataclass(frozen=True)
class CandidateBlend:
    """All fitted sources, combined per placement by the config's chains."""

    sources: Mapping[str, Source]
    config: SourcesConfig

    def ask(self, name: str, ctx: RecContext, k: int) -> Proposal:
        """Source ``name``'s own proposal of ``k`` items."""
        return self.sources[name].propose(ctx, k)

    def owned(self, person_id: str | None) -> IntArray:
        """The one-off goods ``person_id`` bought (``BuyAgainSource.owned``): no
        placement proposes them to that person. Nothing without a buy_again source."""
        source = self.sources.get("buy_again")
        return source.owned(person_id) if isinstance(source, BuyAgainSource) else NO_ITEMS

    def seen(self, person_id: str | None) -> IntArray:
        """Every item ``person_id``'s history holds (``BuyAgainSource.seen``): what a
        new-items placement leaves out. Nothing without a buy_again source."""
        source = self.sources.get("buy_again")
        return source.seen(person_id) if isinstance(source, BuyAgainSource) else NO_ITEMS

    def propose(
        self,
        ctx: RecContext,
        k: int,
        chain: PlacementChain | None = None,
        asked: dict[str, Proposal] | None = None,
        ask: Asker | None = None,
    ) -> Proposal:
        """The chain's blend of ``k`` items; ``asked`` (given) receives each blended
        source's own proposal, at the chain's depth. ``ask(name, ctx, k)`` answers for
        source ``name`` (default: the source itself; serving may keep its answers)."""
        chain = chain or self.config.chain(ctx.placement)
        ask = ask or self.ask
        proposals = [
            (ask(name, ctx, chain.depth), w)
            for name, w in chain.blend.items()
            if name in self.sources
        ]
        if asked is not None:
            asked.update((p.source, p) for p, _ in proposals)
        main = blend(proposals, k)
        if len(main.items) >= k:
            return main
        items: list[IntArray] = [main.items]
        scores: list[FloatArray] = [main.scores]
        reasons: list[Reason] = list(main.reasons)
        base = float(main.scores.min()) if len(main.items) else 0.0
        have = len(main.items)
        taken = set(main.items.tolist()) | set(ctx.exclude)
        for name in chain.fallbacks:
            if have >= k or name not in self.sources:
                continue
            fallback_ctx = replace(ctx, exclude=frozenset(taken))
            got = ask(name, fallback_ctx, k - have)
            # first occurrences of what is not taken yet, in the fallback's own order
            _, first = np.unique(got.items, return_index=True)
            first.sort()
            picked = first[~member(got.items[first], np.fromiter(taken, np.int64, len(taken)))]
            new = got.items[picked]
            taken.update(new.tolist())
            items.append(new)
            # Below every blended item, in the fallback's own order.
            scores.append(base - (have - len(main.items) + 1 + np.arange(len(new), dtype=float)))
            have += len(new)
            reasons.extend(_as_fallback(got.reasons[i]) for i in picked.tolist())
        return Proposal(
            "blend",
            np.concatenate(items).astype(np.int64),
            np.concatenate(scores).astype(np.float64),
            tuple(reasons),
        )
