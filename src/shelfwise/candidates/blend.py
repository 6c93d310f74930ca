"""The candidate blend of a placement: weighted sources first, then labelled fallbacks.

Each blended source's scores are divided by its best score, multiplied by the
source's weight and summed per item; an item keeps the reason of the source
that contributed most. When the blend yields fewer than ``k`` items, the
placement's fallback sources fill the rest in order, each slot saying so
(``Reason.fallback``). One exclude set is shared by every step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import chain

import numpy as np

from shelfwise.candidates.base import Proposal, Reason, RecContext, Source
from shelfwise.candidates.config import PlacementChain, SourcesConfig
from shelfwise.candidates.neighbours import top_k


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


@dataclass(frozen=True)
class CandidateBlend:
    """All fitted sources, combined per placement by the config's chains."""

    sources: Mapping[str, Source]
    config: SourcesConfig

    def propose(self, ctx: RecContext, k: int, chain: PlacementChain | None = None) -> Proposal:
        chain = chain or self.config.chain(ctx.placement)
        proposals = [
            (self.sources[name].propose(ctx, chain.depth), w)
            for name, w in chain.blend.items()
            if name in self.sources
        ]
        main = blend(proposals, k)
        if len(main.items) >= k:
            return main
        items = list(main.items.tolist())
        scores = list(main.scores.tolist())
        reasons: list[Reason] = list(main.reasons)
        base = float(min(scores)) if scores else 0.0
        taken = set(items) | set(ctx.exclude)
        for name in chain.fallbacks:
            if len(items) >= k or name not in self.sources:
                continue
            fallback_ctx = replace(ctx, exclude=frozenset(taken))
            got = self.sources[name].propose(fallback_ctx, k - len(items))
            for item, reason in zip(got.items.tolist(), got.reasons, strict=True):
                if item in taken:
                    continue
                taken.add(item)
                items.append(item)
                # Below every blended item, in the fallback's own order.
                scores.append(base - (len(items) - len(main.items)))
                reasons.append(_as_fallback(reason))
        return Proposal(
            "blend",
            np.array(items, dtype=np.int64),
            np.array(scores, dtype=np.float64),
            tuple(reasons),
        )
