"""The first stages of the pipeline: the request's context and its candidates.

Both are pure over the in-memory snapshot and the given parts; the serving
:class:`~shelfwise.pipeline.recommender.Recommender` does the I/O around them
(session read, decision log, metrics).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import attrgetter
from typing import Protocol

from shelfwise.candidates.base import IntArray, Proposal, RecContext, SessionEvent
from shelfwise.candidates.blend import CandidateBlend
from shelfwise.candidates.config import PlacementChain
from shelfwise.catalog import CatalogSnapshot
from shelfwise.errors import InvalidInput
from shelfwise.pipeline.bundles import BundleView
from shelfwise.pipeline.kept import depends_on
from shelfwise.pipeline.learned import (
    SOURCE_DEPTH,
    KeptOrders,
    at_bucket,
    candidates_key,
    source_proposals,
)
from shelfwise.pipeline.memo import CandidateMemo, impersonal
from shelfwise.pipeline.pool import Pool, Trace
from shelfwise.pipeline.ports import Flow, Plan, StageName
from shelfwise.pipeline.request import RecommendRequest
from shelfwise.serving.placements import Placement
from shelfwise.serving.session import SessionRecord


def session_events(
    records: Sequence[SessionRecord], snapshot: CatalogSnapshot
) -> tuple[SessionEvent, ...]:
    vocab = snapshot.vocab
    return tuple(
        SessionEvent(vocab[r.product_id], r.type, datetime.fromtimestamp(r.at, UTC))
        for r in records
        if r.product_id in vocab
    )


def session_cart(events: Sequence[SessionEvent]) -> list[int]:
    """Items in the session's cart: added, not removed since, not bought since."""
    cart: dict[int, None] = {}
    for e in events:
        if e.type == "add_to_cart":
            cart[e.item] = None
        elif e.type in ("remove_from_cart", "purchase"):
            cart.pop(e.item, None)
    return list(cart)


def build_context(
    req: RecommendRequest,
    placement: Placement,
    snapshot: CatalogSnapshot,
    records: Sequence[SessionRecord],
    now: datetime,
    person_id: str | None,
    trace: Trace,
    blend: Blender | None = None,
) -> RecContext:
    """Resolve the request into dense items: context item, cart (asked + session), session.

    Excluded: the viewed items, the cart, what the session bought and, for a person
    ``blend``'s history knows, the one-off goods they bought (``Blender.owned``: a
    frying pan's buyer is not offered the casserole they own). Every placement's
    candidates leave them out, and the trace's context lists them."""
    if placement.requires_item and not req.item:
        raise InvalidInput(
            f"placement {placement.name!r} needs the viewed product: pass item=<product id>",
            code="item_required",
        )
    vocab = snapshot.vocab
    context_items = tuple(vocab[p] for p in req.item if p in vocab)
    unknown = [p for p in (*req.item, *req.cart) if p not in vocab]
    if unknown:
        trace.notes.append(f"unknown product id(s) ignored: {', '.join(unknown[:5])}")
    session = session_events(records, snapshot)
    cart = list(
        dict.fromkeys([*(vocab[p] for p in req.cart if p in vocab), *session_cart(session)])
    )
    bought = {e.item for e in session if e.type == "purchase"}
    owned = blend.owned(person_id).tolist() if blend is not None and person_id else []
    if owned and trace.enabled:
        trace.owned = [snapshot.ids[i] for i in owned]
    if placement.new_items_only and blend is not None and person_id:
        owned = [*owned, *blend.seen(person_id).tolist()]
    return RecContext(
        placement=placement.name,
        now=now,
        person_id=person_id,
        context_items=context_items,
        cart_items=tuple(cart),
        session=session,
        exclude=frozenset((*context_items, *cart, *bought, *owned)),
    )


def degraded(placement: Placement) -> Placement:
    """The placement as served without a model bundle: content and the session's
    views (plus the season on the home page), filled up by popularity.

    Without a viewed product (home, email) the content source anchors on the
    session's views too; the session source leads there, so those items say
    "because you viewed"."""
    sources = {"content": 1.0, "session": 0.8}
    if placement.page in ("home", "email"):
        sources = {"session": 1.0, "content": 0.8, "seasonal": 0.5}
    return placement.model_copy(update={"sources": sources, "fallback": ("popular",)})


def plan_of(placement: Placement, sources: tuple[str, ...] | None = None) -> Plan:
    """The placement's plan: its model chain and its degraded-mode chain."""
    return Plan(placement, chain_of(placement), chain_of(degraded(placement)), sources)


def chain_of(placement: Placement) -> PlacementChain:
    """The candidates package's chain for a placement: blend weights, fallbacks, depth."""
    # model_construct: degraded placements name baseline sources too (``seasonal``).
    return PlacementChain.model_construct(
        blend=dict(placement.sources), fallbacks=placement.fallback, depth=placement.depth
    )


class Blender(Protocol):
    """A placement chain's blend: the candidates package's, or a bundle seen from here."""

    def propose(self, ctx: RecContext, k: int, chain: PlacementChain) -> Proposal: ...

    def owned(self, person_id: str | None) -> IntArray:
        """The one-off goods the person bought (``candidates.buyagain``): left out."""
        ...

    def seen(self, person_id: str | None) -> IntArray:
        """Every item of the person's history: left out by a new-items placement."""
        ...


def gather(
    ctx: RecContext,
    blend: Blender,
    chain: PlacementChain,
    size: int,
    trace: Trace,
) -> Proposal:
    """The placement's blend of sources, with labelled fallbacks filling up to ``size``."""
    got = blend.propose(ctx, size, chain)
    note_candidates(got, trace)
    return got


_source_and_fallback = attrgetter("source", "fallback")


def note_candidates(got: Proposal, trace: Trace) -> None:
    """What each source proposed, into the trace (and which fallbacks filled in)."""
    if trace.enabled or any(r.fallback for r in got.reasons[-1:]):
        pairs = Counter(map(_source_and_fallback, got.reasons))  # in order of first sight
        counts = {f"{s} (fallback)" if fb else s: n for (s, fb), n in pairs.items()}
        trace.candidates = counts
        trace.fallback_used = [
            k.removesuffix(" (fallback)") for k in counts if k.endswith("(fallback)")
        ]


@dataclass(frozen=True)
class Candidates:
    """The candidates stage: the placement's chain of sources over the model bundle
    (or, without one, the degraded-mode blend), as one pool.

    ``every_source``: the rank stage reads each source's own proposal too (the
    learned ranker, as in training): as features of the chain's items only. ``memo``
    keeps the candidates of requests nothing personal shapes (serving;
    ``pipeline/memo.py``). With ``every_source``, the sources read the clock at the end
    of the request's time bucket of ``bucket`` seconds, and ``kept`` keeps every
    context's candidates for its bucket (``pipeline/learned.py``)."""

    blend: Blender
    view: BundleView | None = None  # the bundle the blend is (its sources for the ranker)
    degraded: bool = False  # the degraded-mode blend: the plan's degraded chain
    every_source: bool = False
    memo: CandidateMemo | None = None
    name: StageName = "candidates"
    version: str | None = None
    bucket: int = 0
    kept: KeptOrders | None = None
    # With ``every_source``: the sources the ranker reads (its feature spec's); the
    # others are not asked (None: every source).
    reads: tuple[str, ...] | None = None

    def run(self, flow: Flow) -> Flow:
        ctx, plan = flow.ctx, flow.plan
        chain = plan.degraded_chain if self.degraded else plan.chain
        if self.every_source:
            return self._learned(flow, chain)
        memo = self.memo if impersonal(ctx) else None  # the learned path returned above
        key = (ctx.placement, id(chain), ctx.context_items, ctx.now.month, flow.pool_size)
        stamp = (len(flow.snapshot), id(self.view.bundle) if self.view is not None else None)
        kept = memo.get(key, stamp, flow.snapshot.changed_seq) if memo is not None else None
        if kept is not None:
            proposal, pool = kept
            note_candidates(proposal, flow.trace)
            proposals: tuple[Proposal, ...] = (proposal,)
        else:
            proposals = self._propose(flow, ctx, chain)
            pool = Pool.union([proposals[0]], ctx.exclude)
            if memo is not None:
                deps = depends_on(pool.items, ctx.context_items)
                memo.put(key, stamp, (proposals[0], pool), deps, flow.seq)
        return self._pooled(flow, proposals, pool)

    def _pooled(self, flow: Flow, proposals: tuple[Proposal, ...], pool: Pool) -> Flow:
        flow.trace.keep_pool(pool, flow.snapshot, flow.plan.placement.rule_scope)
        return flow._replace(pool=pool, proposals=proposals, candidates=pool.items)

    def _learned(self, flow: Flow, chain: PlacementChain) -> Flow:
        """The learned ranker's candidates: the sources at the bucket's clock, kept per
        (context, bucket) when ``kept`` is on (an impersonal context's per month:
        ``learned.candidates_key``)."""
        ctx = at_bucket(flow.ctx, self.bucket)
        kept = self.kept if self.kept is not None and self.bucket > 0 else None
        key = (*candidates_key(ctx), id(chain), flow.plan.sources, flow.pool_size)
        stamp = (len(flow.snapshot), id(self.view.bundle) if self.view is not None else None)
        got = kept.candidates.get(key, stamp, flow.snapshot.changed_seq) if kept else None
        if got is not None:
            proposals, pool = got
            note_candidates(proposals[0], flow.trace)
        else:
            proposals = self._propose(flow, ctx, chain)
            # The pool is the placement's own chain; each source's own proposal (the
            # learned ranker's features) never adds items the chain did not propose.
            pool = Pool.union([proposals[0]], ctx.exclude)
            if kept is not None:
                kept.keep_candidates(key, stamp, (proposals, pool), ctx, flow.seq)
        return self._pooled(flow, proposals, pool)

    def _propose(self, flow: Flow, ctx: RecContext, chain: PlacementChain) -> tuple[Proposal, ...]:
        placement = flow.plan.placement
        size = flow.pool_size
        if not self.every_source:
            return (gather(ctx, self.blend, chain, size, flow.trace),)
        # The ranker's features: each source at its training depth, however deep the pool.
        depth = min(SOURCE_DEPTH, placement.max_candidates)
        only = flow.plan.sources
        if self.reads is not None:
            only = tuple(n for n in (only if only is not None else self.reads) if n in self.reads)
        if self.view is not None and self.blend is self.view:
            # The blend's own sources are not asked twice (``source_proposals``).
            asked: dict[str, Proposal] = {}
            proposal = self.view.propose(ctx, size, chain, asked)
            note_candidates(proposal, flow.trace)
            each = source_proposals(ctx, self.view, depth, only, asked, chain.depth)
            return (proposal, *each)
        proposal = gather(ctx, self.blend, chain, size, flow.trace)
        if self.view is not None:
            return (proposal, *source_proposals(ctx, self.view, depth, only))
        if isinstance(self.blend, CandidateBlend):  # an offline fit, in the snapshot's indices
            sources = self.blend.sources.items()
            own = (s.propose(ctx, depth) for n, s in sources if only is None or n in only)
            return (proposal, *own)
        return (proposal,)
