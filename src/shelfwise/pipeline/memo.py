"""Candidates remembered per (placement, viewed items) for requests nothing personal shapes.

A product-page request with no person, no live session and no cart gets the same
blended candidates every time until the catalog or the model bundle changes: the
sources read only the viewed items (and the brand and category of the viewed and
proposed products). Those candidates are kept (before any rule: stock, price and
the rulebook still apply on every request), keyed by placement plan, viewed
items and month (the seasonal source reads it), each valid until one of its
products or viewed items changes, the catalog grows or another bundle is served
(``pipeline/kept.py``). PERFORMANCE.md: serving a kept list costs a fraction of
computing it.
"""

from __future__ import annotations

from collections.abc import Hashable

from shelfwise.candidates.base import Proposal, RecContext
from shelfwise.pipeline.kept import Depends, KeptStore
from shelfwise.pipeline.pool import Pool

Entry = tuple[Proposal, Pool]


def impersonal(ctx: RecContext) -> bool:
    """Whether nothing about the shopper can shape the candidates."""
    return ctx.person_id is None and not ctx.session and not ctx.cart_items


class CandidateMemo(KeptStore[Entry]):
    def __init__(self, max_entries: int = 20_000) -> None:
        super().__init__(max_entries)

    def put(
        self,
        key: Hashable,
        stamp: Hashable,
        entry: Entry,
        deps: Depends,
        seq: int,
    ) -> None:
        proposal, pool = entry
        for a in (proposal.items, proposal.scores, pool.items, pool.score, pool.hits):
            a.flags.writeable = False  # shared by later requests: nobody may edit it
        pool.reason_of.flags.writeable = False
        super().put(key, stamp, entry, deps, seq)
