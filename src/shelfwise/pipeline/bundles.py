"""A model bundle as this worker's request path sees it.

A bundle's arrays are indexed by the catalog vocabulary *at training time*;
this worker's snapshot may order items differently (a fresh start loads in id
order, products added since are appended). :class:`BundleView` maps requests
into the bundle's index space and proposals back, and skips both when the two
vocabularies agree (the common case). Serving gives it a :class:`ProposalMemo`: the
sources' answers to impersonal contexts kept for as long as the view serves
(``pipeline/proposals.py``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from shelfwise.candidates.base import IntArray, Proposal, RecContext, SessionEvent
from shelfwise.candidates.blend import CandidateBlend
from shelfwise.candidates.config import PlacementChain
from shelfwise.catalog import CatalogSnapshot
from shelfwise.pipeline.proposals import ProposalMemo

if TYPE_CHECKING:
    from shelfwise.bundles import ModelBundle


class BundleView:
    def __init__(
        self, bundle: ModelBundle, snapshot: CatalogSnapshot, memo: ProposalMemo | None = None
    ) -> None:
        self.bundle = bundle
        self.memo = memo
        self.snapshot = snapshot
        self.version = bundle.version
        self.created_at = bundle.info.created_at.timestamp()
        self.blend: CandidateBlend = bundle.artifacts.blend()
        self.n = -1
        self.identity = False
        self.from_bundle: IntArray = np.zeros(0, np.int64)
        self.to_bundle: IntArray = np.zeros(0, np.int64)
        self.current()

    def current(self) -> BundleView:
        """Rebuild the index maps when the catalog has grown."""
        n = len(self.snapshot)
        if n == self.n:
            return self
        items = self.bundle.artifacts.items
        vocab = self.snapshot.vocab
        from_b = np.fromiter((vocab.get(p, -1) for p in items), np.int64, len(items))
        to_b = np.full(n, -1, np.int64)
        known = from_b >= 0
        to_b[from_b[known]] = np.flatnonzero(known)
        self.from_bundle, self.to_bundle, self.n = from_b, to_b, n
        self.identity = bool(np.array_equal(from_b, np.arange(len(items))))
        return self

    def _in(self, items: tuple[int, ...] | frozenset[int]) -> list[int]:
        mapped = (int(self.to_bundle[i]) for i in items if i < self.n)
        return [i for i in mapped if i >= 0]

    def context(self, ctx: RecContext) -> RecContext:
        """The request in the bundle's index space (items it never saw are left out)."""
        nb = len(self.from_bundle)
        # Items past the bundle's vocabulary are new since training: unknown to it.
        if self.identity and all(i < nb for i in (*ctx.context_items, *ctx.cart_items)):
            return ctx
        to = self.to_bundle
        return replace(
            ctx,
            context_items=tuple(self._in(ctx.context_items)),
            cart_items=tuple(self._in(ctx.cart_items)),
            session=tuple(
                SessionEvent(int(to[e.item]), e.type, e.at)
                for e in ctx.session
                if e.item < self.n and to[e.item] >= 0
            ),
            exclude=frozenset(self._in(ctx.exclude)),
        )

    def owned(self, person_id: str | None) -> IntArray:
        """The one-off goods ``person_id`` bought (``CandidateBlend.owned``), in this
        worker's index space (items the catalog no longer has are left out)."""
        return self._here(self.blend.owned(person_id))

    def seen(self, person_id: str | None) -> IntArray:
        """Every item of ``person_id``'s history (``CandidateBlend.seen``), in this
        worker's index space."""
        return self._here(self.blend.seen(person_id))

    def _here(self, items: IntArray) -> IntArray:
        if self.identity or not len(items):
            return items
        mapped = self.from_bundle[items]
        return mapped[mapped >= 0]

    def proposal(self, p: Proposal) -> Proposal:
        """A proposal back in this worker's index space, with anchors mapped too."""
        if self.identity:
            return p
        items = self.from_bundle[p.items]
        keep = np.flatnonzero(items >= 0)
        fb = self.from_bundle
        reasons = tuple(
            r
            if r.anchor is None
            else replace(r, anchor=int(fb[r.anchor]) if fb[r.anchor] >= 0 else None)
            for r in (p.reasons[int(i)] for i in keep)
        )
        return Proposal(p.source, items[keep], p.scores[keep], reasons)

    def ask(self, name: str, ctx: RecContext, k: int) -> Proposal:
        """Source ``name``'s proposal of ``k`` items for ``ctx`` (both in the bundle's
        index space), from the memo when it keeps it."""
        source = self.blend.sources[name]
        if self.memo is None or not self.identity:
            return source.propose(ctx, k)
        return self.memo.ask(name, source, ctx, k, self.snapshot)

    def propose(
        self,
        ctx: RecContext,
        k: int,
        chain: PlacementChain,
        asked: dict[str, Proposal] | None = None,
    ) -> Proposal:
        """The bundle's blend for ``ctx``, in this worker's index space (``asked``: each
        blended source's own proposal, in the bundle's)."""
        return self.proposal(self.blend.propose(self.context(ctx), k, chain, asked, self.ask))
