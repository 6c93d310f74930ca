"""Training sets from history: features as of a decision time t, labels from after t.

For each person active in the label window ``[t, t + horizon)`` the sources
(fitted on data before t by the caller) propose candidates for a request at
t, whose session is the person's events of the last ``session_gap`` seconds.
Features come from ``build_features`` with a ``RankingState`` fitted before t,
exactly as at serving time. A candidate's label is its best graded event in
the window: purchase 3 > add-to-cart 2 > click/view 1 > nothing 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import numpy as np

from shelfwise.candidates.base import Proposal, RecContext, SessionEvent
from shelfwise.ranking.candidates import CandidateSet
from shelfwise.ranking.features import FeatureSpec, build_features
from shelfwise.ranking.history import (
    CART,
    CLICK,
    KIND_GRADE,
    KINDS,
    PURCHASE,
    VIEW,
    FloatArray,
    HistoryLog,
    IntArray,
)
from shelfwise.ranking.items import ItemTable
from shelfwise.ranking.state import RankingState

Propose = Callable[[RecContext], Sequence[Proposal]]
R = TypeVar("R")
SESSION_GAP = 30 * 60
_EVENT_TYPE = {VIEW: "product_view", CART: "add_to_cart", PURCHASE: "purchase", CLICK: "rec_click"}


@dataclass
class TrainingSet:
    x: FloatArray
    y: IntArray  # graded label per row
    groups: IntArray  # rows per request, in order
    persons: list[str]  # one per request
    items: IntArray  # candidate item per row
    candidates: list[CandidateSet]  # one per request
    weights: FloatArray | None = None  # per row (inverse propensity); None = all 1

    @property
    def positives(self) -> int:
        return int((self.y > 0).sum())

    def keep_groups(self, keep: IntArray) -> TrainingSet:
        """Only the requests at positions ``keep``."""
        starts = np.concatenate([[0], np.cumsum(self.groups)])
        rows = np.concatenate([np.arange(starts[g], starts[g + 1]) for g in keep]).astype(int)
        return TrainingSet(
            self.x[rows],
            self.y[rows],
            self.groups[keep],
            [self.persons[g] for g in keep],
            self.items[rows],
            [self.candidates[g] for g in keep],
            None if self.weights is None else self.weights[rows],
        )

    def thinned(self, share: float, seed: int = 0) -> TrainingSet:
        """Every bought or logged (weighted) row, and a seeded ``share`` of the others:
        a request's ranking is learned from its positives against a sample of its
        negatives, at ``share`` of the cost. Requests left without a row are dropped; the
        set is for training only (its rows no longer match a request's candidate set, so
        it carries none)."""
        if share >= 1.0 or not len(self.y):
            return self
        weights = self.row_weights()
        keep = (self.y > 0) | (weights != 1.0)
        keep |= np.random.default_rng(seed).random(len(self.y)) < share
        group = np.repeat(np.arange(len(self.groups)), self.groups)
        sizes = np.bincount(group[keep], minlength=len(self.groups))
        kept = np.flatnonzero(sizes)
        return TrainingSet(
            self.x[keep],
            self.y[keep],
            sizes[kept].astype(np.int64),
            [self.persons[g] for g in kept] if len(self.persons) == len(self.groups) else [],
            self.items[keep],
            [],
            None if self.weights is None else self.weights[keep],
        )

    def row_weights(self) -> FloatArray:
        return np.ones(len(self.y)) if self.weights is None else self.weights

    @classmethod
    def concat(cls, parts: Sequence[TrainingSet], width: int) -> TrainingSet:
        """The requests of every part, in order (an empty set of ``width`` columns if none)."""
        parts = [p for p in parts if len(p.groups)]
        if not parts:
            return cls(
                np.zeros((0, width)),
                np.zeros(0, dtype=np.int64),
                np.zeros(0, dtype=np.int64),
                [],
                np.zeros(0, dtype=np.int64),
                [],
            )
        weighted = any(p.weights is not None for p in parts)
        return cls(
            np.vstack([p.x for p in parts]),
            np.concatenate([p.y for p in parts]),
            np.concatenate([p.groups for p in parts]),
            [name for p in parts for name in p.persons],
            np.concatenate([p.items for p in parts]),
            [c for p in parts for c in p.candidates],
            np.concatenate([p.row_weights() for p in parts]) if weighted else None,
        )


Group = tuple[FloatArray, IntArray, str, CandidateSet]  # features, labels, person, candidates


def assemble(made: Sequence[Group], width: int) -> TrainingSet:
    """The training set of requests made one by one (``width`` feature columns)."""
    return TrainingSet(
        np.vstack([g[0] for g in made]) if made else np.zeros((0, width)),
        np.concatenate([g[1] for g in made]) if made else np.zeros(0, dtype=np.int64),
        np.asarray([len(g[3]) for g in made], dtype=np.int64),
        [g[2] for g in made],
        np.concatenate([g[3].items for g in made]) if made else np.zeros(0, dtype=np.int64),
        [g[3] for g in made],
    )


def window_labels(log: HistoryLog, start: int, end: int) -> dict[int, dict[int, int]]:
    """person -> {item: best grade} over the events in ``[start, end)``."""
    w = log.window(start, end)
    grade = KIND_GRADE[w.kind]
    keep = grade > 0
    out: dict[int, dict[int, int]] = {}
    for p, it, g in zip(w.person[keep], w.item[keep], grade[keep], strict=True):
        row = out.setdefault(int(p), {})
        if g > row.get(int(it), 0):
            row[int(it)] = int(g)
    return out


def session_at(
    log: HistoryLog, person: int, t: int, gap: int = SESSION_GAP
) -> tuple[SessionEvent, ...]:
    """The person's live session at t: their events of the last ``gap`` seconds, oldest first."""
    w = log.window(t - gap, t)
    mine = np.flatnonzero((w.person == person) & np.isin(w.kind, list(_EVENT_TYPE)))
    return tuple(
        SessionEvent(
            int(w.item[i]), _EVENT_TYPE[int(w.kind[i])], datetime.fromtimestamp(int(w.at[i]), UTC)
        )
        for i in mine
    )


def decision_context(
    log: HistoryLog,
    person: int,
    t: int,
    placement: str = "home",
    exclude: frozenset[int] = frozenset(),
) -> RecContext:
    return RecContext(
        placement=placement,
        now=datetime.fromtimestamp(t, UTC),
        person_id=log.persons[person],
        session=session_at(log, person, t),
        exclude=exclude,
    )


def build_training_set(
    log: HistoryLog,
    items: ItemTable,
    state: RankingState,
    spec: FeatureSpec,
    propose: Propose,
    t: int,
    horizon: int,
    persons: Sequence[int] | None = None,
    placement: str = "home",
    require_positive: bool = True,
    exclude_seen: bool = False,
    limit: int | None = None,
) -> TrainingSet:
    """One request per person at ``t``; ``state`` must be fitted as of ``t``.

    ``exclude_seen`` asks for new items only: what the person interacted with
    before t is excluded from the request (and so from the candidates).
    ``limit``: at most that many requests, of people drawn evenly (asked in an order
    seeded by ``t`` until ``limit`` requests are made; the requests keep the people's
    order); None asks everyone.
    """
    if state.as_of != t:
        raise ValueError(f"the state is as of {state.as_of}, not the decision time {t}")
    labels = window_labels(log, t, t + horizon)
    people = sorted(labels) if persons is None else list(persons)
    order = (
        range(len(people))
        if limit is None
        else np.random.default_rng(t).permutation(len(people)).tolist()
    )
    made: list[tuple[int, Group]] = []
    for n in order:
        if limit is not None and len(made) >= limit:
            break
        p = people[n]
        exclude = frozenset(state.person_items.row(p)[0].tolist()) if exclude_seen else frozenset()
        ctx = decision_context(log, p, t, placement, exclude)
        cands = CandidateSet.from_proposals(propose(ctx), spec.sources)
        if exclude:
            cands = cands.take(np.flatnonzero(~np.isin(cands.items, list(exclude))))
        if len(cands) == 0:
            continue
        truth = labels.get(p, {})
        y = np.fromiter(
            (truth.get(int(i), 0) for i in cands.items), dtype=np.int64, count=len(cands)
        )
        if require_positive and not y.any():
            continue
        made.append((n, (build_features(ctx, cands, state, items, spec), y, log.persons[p], cands)))
    made.sort(key=lambda got: got[0])
    return assemble([group for _, group in made], len(spec.names))


@dataclass(frozen=True)
class AnchorRequest:
    """One product-page request of the bought-with task: ``person`` viewed or carted
    ``anchor`` at ``at``; ``labels`` grade what they then carted (2) and bought (3)
    in the rest of that session."""

    person: int
    anchor: int
    at: int
    labels: dict[int, int]


def bought_with_requests(
    log: HistoryLog,
    start: int,
    end: int,
    gap: int = SESSION_GAP,
    per_session: int = 2,
    limit: int = 4_000,
    seed: int = 0,
) -> list[AnchorRequest]:
    """The bought-with task's requests in ``[start, end)``: a session is a person's
    events with no pause over ``gap`` seconds; each item first viewed or carted in a
    session after which something else was carted or bought in it is an anchor (the
    first ``per_session`` of them); its labels are those other items, purchase 3 >
    add-to-cart 2 (a view is no label: the placement's job is what is bought *with*
    the viewed product). At most ``limit`` requests, drawn evenly (``seed``)."""
    w = log.window(start, end)
    out: list[AnchorRequest] = []
    if not len(w):
        return out
    order = np.lexsort((w.at, w.person))
    person, item, kind, at = w.person[order], w.item[order], w.kind[order], w.at[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (person[1:] != person[:-1]) | (at[1:] - at[:-1] > gap)
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], len(order))
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        k = kind[a:b]
        if not np.isin(k, (CART, PURCHASE)).any():
            continue
        seen: set[int] = set()
        made = 0
        for j in range(a, b):
            anchor = int(item[j])
            if kind[j] not in (VIEW, CART) or anchor in seen:
                continue
            seen.add(anchor)
            labels: dict[int, int] = {}
            for m in range(j + 1, b):
                g = 3 if kind[m] == PURCHASE else 2 if kind[m] == CART else 0
                it = int(item[m])
                if g and it != anchor and g > labels.get(it, 0):
                    labels[it] = g
            if labels:
                out.append(AnchorRequest(int(person[a]), anchor, int(at[j]), labels))
                made += 1
                if made >= per_session:
                    break
    return drawn(out, limit, np.random.default_rng(seed))


def drawn(requests: list[R], limit: int, rng: np.random.Generator) -> list[R]:
    """At most ``limit`` of ``requests``, drawn evenly, in their order."""
    if len(requests) <= limit:
        return requests
    keep = np.sort(rng.choice(len(requests), limit, replace=False))
    return [requests[i] for i in keep.tolist()]


def labelled(
    ctx: RecContext,
    propose: Propose,
    state: RankingState,
    items: ItemTable,
    spec: FeatureSpec,
    truth: dict[int, int],
) -> Group | None:
    """One request's group: the sources' proposals for ``ctx`` without what it excludes
    (the viewed product, the cart), graded by ``truth`` (item -> grade); None when no
    candidate has a grade (it teaches no order)."""
    cands = CandidateSet.from_proposals(propose(ctx), spec.sources)
    cands = cands.take(np.flatnonzero(~np.isin(cands.items, list(ctx.exclude))))
    y = np.fromiter((truth.get(int(i), 0) for i in cands.items), dtype=np.int64, count=len(cands))
    if not y.any():
        return None
    assert ctx.person_id is not None
    return build_features(ctx, cands, state, items, spec), y, ctx.person_id, cands


def build_bought_with_set(
    log: HistoryLog,
    items: ItemTable,
    state: RankingState,
    spec: FeatureSpec,
    propose: Propose,
    t: int,
    horizon: int,
    placement: str = "product_bought_with",
    limit: int = 4_000,
) -> TrainingSet:
    """The bought-with task's training set of the window ``[t, t + horizon)``: one
    product-page request per anchor (:func:`bought_with_requests`) at the moment it
    was viewed, with the person's live session before it; the sources and ``state``
    are as of ``t`` (nothing from the window reaches them, the session does as it
    would when served). Rows are the sources' proposals for the anchor; a request
    none of whose candidates was carted or bought teaches no order and is skipped."""
    if state.as_of != t:
        raise ValueError(f"the state is as of {state.as_of}, not the decision time {t}")
    made: list[Group] = []
    for req in bought_with_requests(log, t, t + horizon, limit=limit, seed=t):
        ctx = RecContext(
            placement=placement,
            now=datetime.fromtimestamp(req.at, UTC),
            person_id=log.persons[req.person],
            context_items=(req.anchor,),
            session=session_at(log, req.person, req.at),
            exclude=frozenset({req.anchor}),
        )
        group = labelled(ctx, propose, state, items, spec, req.labels)
        if group is not None:
            made.append(group)
    return assemble(made, len(spec.names))


@dataclass(frozen=True)
class CartRequest:
    """One cart request of the cart task: ``person``'s order at ``at`` without one of
    its items; ``cart`` the other items, ``hidden`` the one to find (labelled 3)."""

    person: int
    at: int
    cart: tuple[int, ...]
    hidden: int


def cart_requests(
    log: HistoryLog,
    start: int,
    end: int,
    max_items: int = 50,
    limit: int = 4_000,
    seed: int = 0,
) -> list[CartRequest]:
    """The cart task's requests in ``[start, end)``: an order is one person's purchases
    at one timestamp (an order's lines share its time); each order of 2 to
    ``max_items`` distinct items hides one of them, drawn with ``seed``, and its cart
    is the others. At most ``limit`` requests, drawn evenly."""
    w = log.window(start, end)
    buys = np.flatnonzero(w.kind == PURCHASE)
    out: list[CartRequest] = []
    if not len(buys):
        return out
    person, at, item = w.person[buys], w.at[buys], w.item[buys]
    order = np.lexsort((item, at, person))
    person, at, item = person[order], at[order], item[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = (person[1:] != person[:-1]) | (at[1:] != at[:-1])
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], len(order))
    rng = np.random.default_rng(seed)
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        basket = np.unique(item[a:b])
        if not 2 <= len(basket) <= max_items:
            continue
        hidden = int(basket[rng.integers(len(basket))])
        cart = tuple(int(i) for i in basket if i != hidden)
        out.append(CartRequest(int(person[a]), int(at[a]), cart, hidden))
    return drawn(out, limit, rng)


def build_cart_set(
    log: HistoryLog,
    items: ItemTable,
    state: RankingState,
    spec: FeatureSpec,
    propose: Propose,
    t: int,
    horizon: int,
    placement: str = "cart",
    limit: int = 4_000,
) -> TrainingSet:
    """The cart task's training set of the window ``[t, t + horizon)``: one cart request
    per order with one item hidden (:func:`cart_requests`), at the order's time, by
    the person who placed it; the sources and ``state`` are as of ``t``. Rows are the
    sources' proposals for the cart (its items excluded, as served); the hidden item
    is labelled 3 (bought), the others 0; a request whose candidates miss the hidden
    item teaches no order and is skipped."""
    if state.as_of != t:
        raise ValueError(f"the state is as of {state.as_of}, not the decision time {t}")
    made: list[Group] = []
    for req in cart_requests(log, t, t + horizon, limit=limit, seed=t):
        ctx = RecContext(
            placement=placement,
            now=datetime.fromtimestamp(req.at, UTC),
            person_id=log.persons[req.person],
            cart_items=req.cart,
            exclude=frozenset(req.cart),
        )
        group = labelled(ctx, propose, state, items, spec, {req.hidden: 3})
        if group is not None:
            made.append(group)
    return assemble(made, len(spec.names))


__all__ = [
    "KINDS",
    "AnchorRequest",
    "CartRequest",
    "TrainingSet",
    "bought_with_requests",
    "build_bought_with_set",
    "build_cart_set",
    "build_training_set",
    "cart_requests",
    "decision_context",
    "window_labels",
]
