"""Calibrate a product placement's exposure cap when its bundle is trained.

Every in-stock product of the catalog is viewed once, anonymously, through the
served code path itself: the request resolved as serving resolves it
(``pipeline.stages.build_context``), the placement's candidates and what the
rulebook in force allows of them (:meth:`shelfwise.pipeline.Pipeline.allowed`:
the chain at the placement's own depth and ``max_candidates``, every source the
ranker reads at serving's depth, the safety rules), valued by the learned rank
stage as it ranks them (:meth:`shelfwise.pipeline.learned.LearnedRank.valued`,
at the clock of the time bucket serving reads). The best candidates of each go
to :func:`shelfwise.ranking.exposure.calibrate`. (A rule changed after
training changes the pool the floors were made on, and the clock moves on
after training: the served share moves with both until the next training.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from itertools import product

import numpy as np

from shelfwise.catalog import CatalogSnapshot
from shelfwise.pipeline.flow import Pipeline
from shelfwise.pipeline.governed import RulebookArrange
from shelfwise.pipeline.learned import LearnedRank, at_bucket
from shelfwise.pipeline.pool import Trace
from shelfwise.pipeline.request import RecommendRequest
from shelfwise.pipeline.stages import build_context, plan_of
from shelfwise.ranking.exposure import (
    NEVER,
    AnchorCandidates,
    ExposureFloors,
    calibrate,
)
from shelfwise.ranking.history import IntArray
from shelfwise.serving.placements import Placement

MAX_ANCHORS = 5_000  # a larger catalog is calibrated on this many anchors, drawn evenly
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


def anchor_slates(
    pipeline: Pipeline,
    rank: LearnedRank,
    placement: Placement,
    k: int,
    now: datetime,
    max_anchors: int = MAX_ANCHORS,
    clocks: Sequence[timedelta] = CLOCKS,
) -> list[AnchorCandidates]:
    """Each anchor's candidates, best first, and their expected values (every one: a
    slot the arrangement or the cap frees goes to the next one served),
    as ``pipeline`` (its candidates and rules stages) and ``rank`` (the placement's
    learned rank stage, without floors) serve an anonymous view of the anchor at each
    of ``clocks`` after ``now`` (one entry per anchor and clock), and how its
    arrangement de-duplicates them (variant groups). Only what the rules allow is a
    candidate: the best candidate left out of a slate, which floors are measured
    against, is one that could be served."""
    snapshot = pipeline.snapshot
    ids = snapshot.ids
    plan = plan_of(placement)
    out: list[AnchorCandidates] = []
    anchors = anchors_of(snapshot, max_anchors).tolist()
    for (n, after), anchor in product(enumerate(clocks), anchors):
        req = RecommendRequest(placement=placement.name, item=(ids[anchor],), k=k)
        trace = Trace(enabled=False)
        # at the end of its time bucket: the clock the sources and features read
        # served, and the rules too (they read the exact clock)
        ctx = build_context(req, placement, snapshot, (), now + after, None, trace)
        ctx = at_bucket(ctx, rank.bucket)
        flow = pipeline.allowed(ctx, plan, k)
        items, expected = rank.valued(flow)
        if not len(items):
            continue
        best = np.argsort(-expected, kind="stable")
        items = items[best].astype(np.int64)
        groups = None
        if isinstance(pipeline.arrange, RulebookArrange):  # its de-duplication of variants
            g, dropped = pipeline.arrange.book.variant_groups(RulebookArrange.scoped(flow), items)
            groups = np.where(dropped, NEVER, g)
        out.append(AnchorCandidates(items, expected[best], groups, n))
    return out


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


__all__ = ["CLOCKS", "MAX_ANCHORS", "anchor_slates", "anchors_of", "floors_of"]
