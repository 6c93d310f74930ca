"""The request path, one function per stage: context → candidates → safety → rank → arrange.

Every function is pure over the in-memory snapshot and the given parts; the
:class:`~shelfwise.pipeline.recommender.Recommender` wires them and does the I/O
(session read, decision log, metrics). Stages that other packages own (the
rulebook, the learned ranker) plug in through :mod:`shelfwise.pipeline.ports`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from shelfwise.candidates.base import Proposal, RecContext, SessionEvent
from shelfwise.candidates.config import PlacementChain
from shelfwise.catalog import CatalogSnapshot
from shelfwise.errors import InvalidInput
from shelfwise.pipeline.pool import Pool, Trace
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
) -> RecContext:
    """Resolve the request into dense items: context item, cart (asked + session), session."""
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
    return RecContext(
        placement=placement.name,
        now=now,
        person_id=person_id,
        context_items=context_items,
        cart_items=tuple(cart),
        session=session,
        exclude=frozenset((*context_items, *cart, *bought)),
    )


def chain_of(placement: Placement) -> PlacementChain:
    """The candidates package's chain for a placement: blend weights, fallbacks, depth."""
    # model_construct: degraded placements name baseline sources too (``seasonal``).
    return PlacementChain.model_construct(
        blend=dict(placement.sources), fallbacks=placement.fallback, depth=placement.depth
    )


class Blender(Protocol):
    """A placement chain's blend: the candidates package's, or a bundle seen from here."""

    def propose(self, ctx: RecContext, k: int, chain: PlacementChain) -> Proposal: ...


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


def note_candidates(got: Proposal, trace: Trace) -> None:
    """What each source proposed, into the trace (and which fallbacks filled in)."""
    if trace.enabled or any(r.fallback for r in got.reasons[-1:]):
        counts: dict[str, int] = {}
        for r in got.reasons:
            key = f"{r.source} (fallback)" if r.fallback else r.source
            counts[key] = counts.get(key, 0) + 1
        trace.candidates = counts
        trace.fallback_used = [
            k.removesuffix(" (fallback)") for k in counts if k.endswith("(fallback)")
        ]


def availability(ctx: RecContext, pool: Pool, snapshot: CatalogSnapshot, trace: Trace) -> Pool:
    """The always-on safety check: nothing unavailable (out of stock, inactive) is shown."""
    ok = snapshot.available[pool.items]
    if ok.all():
        return pool
    trace.drop("unavailable", pool.items[~ok], snapshot, "out of stock or inactive")
    return pool.take(ok)
