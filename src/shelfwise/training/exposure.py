"""Calibrate a product placement's exposure cap when its bundle is trained.

Every in-stock product of the catalog is viewed once, anonymously, through the
placement's chain and its ranker as serving scores it (the sources at the
ranker's depth, the placement's blend as source ``blend``, the pool the blend
proposes, less what the rulebook in force forbids, the placement's objective);
the best candidates of each go to :func:`shelfwise.ranking.exposure.calibrate`.
(A rule changed after training changes the pool the floors were made on: the
served share moves with it until the next training.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

import numpy as np

from shelfwise.candidates.base import Proposal, RecContext
from shelfwise.catalog import CatalogSnapshot
from shelfwise.ranking.candidates import CandidateSet
from shelfwise.ranking.exposure import KEPT_PER_ANCHOR, ExposureFloors, calibrate
from shelfwise.ranking.history import FloatArray, IntArray
from shelfwise.ranking.objective import PlacementObjective
from shelfwise.ranking.ranker import Ranker
from shelfwise.rules import Rulebook

MAX_ANCHORS = 5_000  # a larger catalog is calibrated on this many anchors, drawn evenly


def anchor_slates(
    ranker: Ranker,
    propose: Callable[[RecContext], Sequence[Proposal]],
    snapshot: CatalogSnapshot,
    placement: str,
    objective: PlacementObjective,
    k: int,
    now: datetime,
    rules: tuple[Rulebook, str] | None = None,
    max_anchors: int = MAX_ANCHORS,
) -> list[tuple[IntArray, FloatArray]]:
    """Each anchor's best ``k x KEPT_PER_ANCHOR`` servable candidates and their
    expected values, as the ranker scores them for an anonymous view of the anchor.
    ``rules``: the rulebook in force and the placement's rule scope; what its safety
    rules forbid is not a candidate (it would not be served, and the best candidate
    left out of a slate, which floors are measured against, is one that could be)."""
    available = np.asarray(snapshot.available, dtype=bool)
    anchors = np.flatnonzero(available)
    if len(anchors) > max_anchors:
        pick = np.random.default_rng(0).choice(len(anchors), max_anchors, replace=False)
        anchors = anchors[np.sort(pick)]
    keep = k * KEPT_PER_ANCHOR
    out: list[tuple[IntArray, FloatArray]] = []
    for anchor in anchors.tolist():
        ctx = RecContext(
            placement=placement,
            now=now,
            context_items=(anchor,),
            exclude=frozenset({anchor}),
        )
        cands = CandidateSet.from_proposals(propose(ctx), ranker.spec.sources)
        ok = (cands.items != anchor) & (cands.items < len(available))
        ok[ok] &= available[cands.items[ok]]
        if "blend" in cands.sources:  # serving ranks the pool the blend proposes
            ok &= np.isfinite(cands.scores[:, cands.sources.index("blend")])
        cands = cands.take(np.flatnonzero(ok))
        if rules is not None and len(cands):
            book, scope = rules
            scoped = replace(ctx, placement=scope)
            allowed = book.apply_safety(scoped, cands.items, np.ones(len(cands))).items
            cands = cands.take(np.flatnonzero(np.isin(cands.items, allowed)))
        if not len(cands):
            continue
        _, prob = ranker.score(ctx, cands, snapshot)
        expected = prob * ranker.values(ctx, cands, snapshot, objective)
        best = np.argsort(-expected, kind="stable")[:keep]
        out.append((cands.items[best].astype(np.int64), expected[best]))
    return out


def floors_of(
    slates: Sequence[tuple[IntArray, FloatArray]],
    ids: Sequence[str],
    placement: str,
    k: int,
    cap: float,
) -> ExposureFloors:
    """The floors of ``placement``'s cap over :func:`anchor_slates`, by product id."""
    floors = calibrate(slates, k, cap)
    return ExposureFloors(
        placement, cap, k, len(slates), {ids[i]: f for i, f in floors.items() if i < len(ids)}
    )


__all__ = ["MAX_ANCHORS", "anchor_slates", "floors_of"]
