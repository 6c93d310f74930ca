"""Calibrate a placement's exposure cap when its bundle is trained (and when the
evaluation's served model fits one: the backtest's and the promotion guard's).

A placement shown for a viewed product (``requires_item``) is calibrated over the
catalog: every in-stock product is viewed once, anonymously. A personal placement
without one (home) is calibrated over people: a sample of the people the bundle
knows (:data:`MAX_PEOPLE`, drawn evenly), each asking the placement with no live
session, as a returning shopper's first page does. Each anchor goes through the
served code path itself: the request resolved as serving resolves it
(``pipeline.stages.build_context``), the placement's candidates and what the
rulebook in force allows of them (:meth:`shelfwise.pipeline.Pipeline.allowed`:
the chain at the placement's own depth and ``max_candidates``, every source the
ranker reads at serving's depth, the safety rules), valued by the learned rank
stage as it ranks them (:meth:`shelfwise.pipeline.learned.LearnedRank.valued`,
at the clock of the time bucket serving reads), at each of :data:`CLOCKS` after
training; an anonymous view's clocks share what does not read the clock
(:func:`pool_clock`; a person's sources read the clock, so each of their clocks is
its own). The candidates of each go to
:func:`shelfwise.ranking.exposure.calibrate`. (A rule changed after
training changes the pool the floors were made on, and the clock moves on
after training: the served share moves with both until the next training.)
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Sequence
from datetime import datetime, timedelta

import numpy as np

from shelfwise.catalog import CatalogSnapshot
from shelfwise.pipeline.flow import Pipeline
from shelfwise.pipeline.governed import RulebookArrange, RulebookSafety
from shelfwise.pipeline.learned import LearnedRank, at_bucket
from shelfwise.pipeline.memo import impersonal
from shelfwise.pipeline.pool import Trace
from shelfwise.pipeline.request import RecommendRequest
from shelfwise.pipeline.slates import windows_open
from shelfwise.pipeline.stages import Candidates, plan_of
from shelfwise.ranking.exposure import (
    NEVER,
    AnchorCandidates,
    ExposureFloors,
    calibrate,
)
from shelfwise.ranking.history import IntArray
from shelfwise.serving.placements import Placement

MAX_ANCHORS = 5_000  # a larger catalog is calibrated on this many anchors, drawn evenly
# A personal placement's share is over the people who are shown it: a sample of this
# many known people (drawn evenly) holds a share to about 1% (one standard error at
# a share of 0.2) at a tenth of the cost of every person of a large store.
MAX_PEOPLE = 2_000
# The clocks after training the cap holds at, each on its own: the ranker's features
# read the clock (an item's age), so one clock's slates are not the next day's.
CLOCKS = tuple(timedelta(hours=h) for h in (0, 8, 16, 24))


def anchors_of(snapshot: CatalogSnapshot, max_anchors: int = MAX_ANCHORS) -> IntArray:
    """The viewed products the cap is calibrated over: every in-stock one (a larger
    catalog: ``max_anchors`` of them, drawn evenly)."""
    anchors: IntArray = np.flatnonzero(np.asarray(snapshot.available, dtype=bool))
    if len(anchors) > max_anchors:
        pick = np.random.default_rng(0).choice(len(anchors), max_anchors, replace=False)
        anchors = anchors[np.sort(pick)]
    return anchors


def people_of(people: Sequence[str], max_people: int = MAX_PEOPLE) -> list[str]:
    """The known people a personal placement's cap is calibrated over: every one of
    ``people`` (more than ``max_people``: that many of them, drawn evenly)."""
    if len(people) <= max_people:
        return list(people)
    pick = np.random.default_rng(0).choice(len(people), max_people, replace=False)
    return [people[i] for i in np.sort(pick).tolist()]


def anchor_requests(
    placement: Placement,
    snapshot: CatalogSnapshot,
    people: Sequence[str],
    k: int,
    max_anchors: int | None = None,
) -> list[tuple[RecommendRequest, str | None]]:
    """The requests a placement's cap is calibrated over, each with the person it is
    served to: an anonymous view of every in-stock product (:func:`anchors_of`) for a
    placement shown for a viewed product, a known person of ``people``
    (:func:`people_of`) for any other. ``max_anchors``: at most this many (default
    :data:`MAX_ANCHORS` products, :data:`MAX_PEOPLE` people)."""
    name = placement.name
    if placement.requires_item:
        ids = snapshot.ids
        return [
            (RecommendRequest(placement=name, item=(ids[a],), k=k), None)
            for a in anchors_of(snapshot, max_anchors or MAX_ANCHORS).tolist()
        ]
    return [
        (RecommendRequest(placement=name, person=p, k=k), p)
        for p in people_of(people, max_anchors or MAX_PEOPLE)
    ]


def anchor_slates(
    pipeline: Pipeline,
    rank: LearnedRank,
    placement: Placement,
    k: int,
    now: datetime,
    max_anchors: int | None = None,
    clocks: Sequence[timedelta] = CLOCKS,
    reuse: bool = True,
    people: Sequence[str] = (),
) -> list[AnchorCandidates]:
    """Each anchor's candidates, best first, and their expected values (every one: a
    slot the arrangement or the cap frees goes to the next one served),
    as ``pipeline`` (its candidates and rules stages) and ``rank`` (the placement's
    learned rank stage, without floors) serve the anchor's request
    (:func:`anchor_requests`: a viewed product, or one of ``people``, the people the
    bundle knows) at each of ``clocks`` after ``now`` (one entry per anchor and clock,
    clock by clock), and how its arrangement de-duplicates them (variant groups).
    Only what the rules allow is a candidate: the best candidate left out of a slate,
    which floors are measured against, is one that could be served.

    The clocks of an anchor whose :func:`pool_clock` is the same share its candidates,
    the rules' decisions and its variant groups, computed once, and are valued in one
    call of the ranker's model (only its features read the rest of the clock).
    ``reuse=False`` computes every clock on its own (the reference the shared
    computation is checked against)."""
    plan = plan_of(placement)
    per_clock: list[list[AnchorCandidates]] = [[] for _ in clocks]
    for req, person in anchor_requests(placement, pipeline.snapshot, people, k, max_anchors):
        trace = Trace(enabled=False)
        # at the end of its time bucket: the clock the sources and features read
        # served, and the rules too (they read the exact clock); what a person owns
        # left out as serving leaves it out (Pipeline.context)
        contexts = [
            at_bucket(pipeline.context(req, placement, (), now + after, person, trace), rank.bucket)
            for after in clocks
        ]
        alike: dict[Hashable, list[int]] = defaultdict(list)
        for n, ctx in enumerate(contexts):
            # a person's sources read the clock (their history's decay, what is due
            # again): only an anonymous view's clocks share its pool
            key = pool_clock(pipeline, ctx.now) if reuse and impersonal(ctx) else None
            alike[key if key is not None else ("clock", n)].append(n)
        for same in alike.values():
            flow = pipeline.allowed(contexts[same[0]], plan, k)
            items, expected = rank.valued_at(flow, [contexts[n] for n in same])
            if not len(items):
                continue
            items = items.astype(np.int64)
            groups = None
            if isinstance(pipeline.arrange, RulebookArrange):  # its de-duplication of variants
                # (each item's group, whatever the order: sorted with the items below)
                g, dropped = pipeline.arrange.book.variant_groups(
                    RulebookArrange.scoped(flow), items
                )
                groups = np.where(dropped, NEVER, g)
            for n, value in zip(same, expected, strict=True):
                best = np.argsort(-value, kind="stable")
                grouped = groups[best] if groups is not None else None
                per_clock[n].append(AnchorCandidates(items[best], value[best], grouped, n))
    return [s for slates in per_clock for s in slates]


def pool_clock(pipeline: Pipeline, now: datetime) -> Hashable | None:
    """What of the clock ``now`` reaches an anonymous view's candidates and what the
    rules allow and de-duplicate of them: the month (the seasonal source) and which of
    the rulebook's time windows are open, as the candidate memo and the slate cache
    key them (``pipeline/memo.py``, ``pipeline/slates.py``). None when a stage is not
    the ordinary one (its clock is not known: every clock is its own)."""
    cands, rules, arrange = pipeline.candidates, pipeline.rules, pipeline.arrange
    if not (
        isinstance(cands, Candidates)
        and isinstance(rules, RulebookSafety)
        and isinstance(arrange, RulebookArrange)
    ):
        return None
    return (now.month, windows_open(rules.book, now), windows_open(arrange.book, now))


def floors_of(
    slates: Sequence[AnchorCandidates],
    ids: Sequence[str],
    placement: str,
    k: int,
    cap: float,
) -> ExposureFloors:
    """The floors of ``placement``'s cap over :func:`anchor_slates`, by product id."""
    floors = calibrate(slates, k, cap)
    anchors = max(Counter(s.clock for s in slates).values(), default=0)  # per clock
    return ExposureFloors(
        placement, cap, k, anchors, {ids[i]: f for i, f in floors.items() if i < len(ids)}
    )


__all__ = [
    "CLOCKS",
    "MAX_ANCHORS",
    "MAX_PEOPLE",
    "anchor_requests",
    "anchor_slates",
    "anchors_of",
    "floors_of",
    "people_of",
    "pool_clock",
]
