"""The request path, one function per stage: context → candidates → safety → rank → arrange.

Every function is pure over the in-memory snapshot and the given parts; the
:class:`~shelfwise.pipeline.recommender.Recommender` wires them and does the I/O
(session read, decision log, metrics). Stages that other packages own (the
rulebook, the learned ranker) plug in through :mod:`shelfwise.pipeline.ports`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np

from shelfwise.candidates.base import Proposal, Reason, RecContext, SessionEvent, Source
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


FALLBACK_WEIGHT = 0.5


def gather(
    ctx: RecContext,
    placement: Placement,
    sources: Mapping[str, Source],
    need: int,
    trace: Trace,
) -> Pool:
    """Union the placement's sources; walk the fallback chain while fewer than ``need``."""
    proposals: list[Proposal] = []
    for ref in placement.sources:
        source = sources.get(ref.name)
        if source is None:
            continue
        got = source.propose(ctx, ref.k)
        trace.candidates[ref.name] = len(got.items)
        proposals.append(got)
    pool = Pool.union(proposals, ctx.exclude)
    asked = {ref.name for ref in placement.sources}
    weights: dict[str, float] = {}
    for name in placement.fallback:
        if len(pool) >= need:
            break
        source = sources.get(name)
        if source is None:
            continue
        got = source.propose(ctx, max(need, 50))
        reasons = tuple(_as_fallback(r) for r in got.reasons)
        # A fallback fills the slate; it should not outrank what the placement asked for.
        label = name if name not in asked else f"{name}:fallback"
        weights[label] = FALLBACK_WEIGHT
        proposals.append(Proposal(label, got.items, got.scores, reasons))
        trace.candidates[f"{name} (fallback)"] = len(got.items)
        trace.fallback_used.append(name)
        pool = Pool.union(proposals, ctx.exclude, weights)
    if len(pool) > placement.max_candidates:
        pool = pool.take(np.arange(placement.max_candidates))
    return pool


def _as_fallback(reason: Reason) -> Reason:
    return reason if reason.fallback else replace(reason, fallback=True)


def availability(ctx: RecContext, pool: Pool, snapshot: CatalogSnapshot, trace: Trace) -> Pool:
    """The always-on safety check: nothing unavailable (out of stock, inactive) is shown."""
    ok = snapshot.available[pool.items]
    if ok.all():
        return pool
    trace.drop("unavailable", pool.items[~ok], snapshot, "out of stock or inactive")
    return pool.take(ok)
