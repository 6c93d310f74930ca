"""The learned ranker (``shelfwise.ranking``) in the request path.

When the served model bundle holds a ranker (``shelfwise train --ranker``), it
orders the candidates the safety rules allowed; the placement's objective
blend becomes the ranker's objective. The ranker is loaded once per bundle
(keyed by the bundle's version), never per request. Its served head keeps the
ranker's order (exploration slots included) through the arrangement; the rest
of the allowed pool follows, in blend order, so pins, de-duplication and caps
still have items to fill with.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from shelfwise.candidates.base import FloatArray, IntArray, Proposal, RecContext
from shelfwise.catalog import CatalogSnapshot
from shelfwise.config import Settings
from shelfwise.errors import ShelfwiseError
from shelfwise.pipeline.bundles import BundleView
from shelfwise.pipeline.pool import Pool, Trace
from shelfwise.pipeline.ports import Flow, Head, ShownReason, StageName
from shelfwise.pipeline.ports import Ranked as PoolRanked
from shelfwise.ranking.candidates import CandidateSet
from shelfwise.ranking.explain import SnapshotNames
from shelfwise.ranking.objective import PlacementObjective, RankingSettings
from shelfwise.ranking.ranker import Ranked, Ranker, ranker_of_bundle
from shelfwise.serving.placements import Placement

log = logging.getLogger("shelfwise.pipeline")

SOURCE_DEPTH = 100  # candidates asked of each source (the ranker trains with this depth)


class LearnedRankers:
    """The ranker of the served bundle, loaded on the first request after a swap."""

    def __init__(self, settings: Settings, snapshot: CatalogSnapshot) -> None:
        self.settings = settings
        self.snapshot = snapshot
        self._version: str | None = None
        self._ranker: Ranker | None = None
        self._objectives: dict[tuple[str, Any], PlacementObjective] = {}

    def of(self, view: BundleView) -> Ranker | None:
        if view.version != self._version:
            self._ranker = self._load(view)
            self._version = view.version
        if self._ranker is None or not view.identity:
            # The ranker's state is indexed like the bundle; a reordered catalog
            # would mix two index spaces: rank with the blend instead.
            return None
        return self._ranker

    def _load(self, view: BundleView) -> Ranker | None:
        try:
            return ranker_of_bundle(
                view.bundle.path,
                SnapshotNames(self.snapshot),
                self.settings.ranking,
                view.version,
            )
        except (OSError, ValueError, ShelfwiseError) as e:
            log.warning(
                "bundle %s: ranker not loaded (%s); ranking with the blend", view.version, e
            )
            return None

    def objective(self, placement: Placement) -> PlacementObjective:
        """The placement's objective blend as the ranker's objective (SLA and stock
        discounts from ``settings.ranking`` for the placement's page)."""
        key = (placement.page, placement.objective)
        got = self._objectives.get(key)
        if got is None:
            got = self._objectives[key] = placement_objective(self.settings.ranking, placement)
        return got


def placement_objective(ranking: RankingSettings, placement: Placement) -> PlacementObjective:
    """The placement's objective blend as the ranker's objective (SLA and stock
    discounts from ``ranking`` for the placement's page): what serving ranks by."""
    o = placement.objective
    return ranking.objective_for(placement.page).model_copy(
        update={"click": o.engagement, "revenue": o.revenue, "margin": o.margin}
    )


def source_proposals(
    ctx: RecContext, view: BundleView, depth: int, only: Sequence[str] | None = None
) -> list[Proposal]:
    """Every source's own proposal (or those an experiment arm keeps), in this
    worker's index space."""
    bctx = view.context(ctx)
    return [
        view.proposal(src.propose(bctx, depth))
        for name, src in view.blend.sources.items()
        if only is None or name in only
    ]


@dataclass(frozen=True)
class LearnedRank:
    """The rank stage with the bundle's ranker: it orders the pool the rules allowed
    (reading every source's own proposal, as in training); the arrangement keeps its
    order first, and its head carries the served scores, reasons and propensities."""

    ranker: Ranker
    objective: PlacementObjective
    name: StageName = "rank"

    @property
    def version(self) -> str:
        return self.ranker.version

    def run(self, flow: Flow) -> Flow:
        ranked = rank_pool(
            self.ranker,
            flow.ctx,
            flow.pool,
            flow.proposals,
            flow.snapshot,
            self.objective,
            flow.k,
            flow.trace,
        )
        return flow._replace(ranked=ranked)


def rank_pool(
    ranker: Ranker,
    ctx: RecContext,
    pool: Pool,
    proposals: Sequence[Proposal],
    snapshot: CatalogSnapshot,
    objective: PlacementObjective,
    k: int,
    trace: Trace,
) -> PoolRanked:
    """Rank the allowed pool; the arrangement's value keeps the ranker's order first."""
    cands = CandidateSet.from_proposals(proposals, ranker.spec.sources)
    rows = np.searchsorted(cands.items, pool.items)
    rows = np.minimum(rows, max(len(cands) - 1, 0))
    known = cands.items[rows] == pool.items if len(cands) else np.zeros(len(pool), bool)
    ranked = ranker.rank(ctx, cands.take(rows[known]), snapshot, objective, k)
    positions = _positions_of(pool.items, ranked.items)
    # Below the head: the rest of the pool in blend order (scores are in (0, 1]).
    order_value: FloatArray = pool.score * 1e-3
    order_value[positions] = 1.0 + np.arange(len(positions), 0, -1, dtype=np.float64)
    if trace.enabled:
        trace.ranker = _traced(ranked, objective, int(known.sum()), snapshot)
    head = Head(
        positions,
        ranked.scores,
        ranked.explored,
        ranked.propensities,
        tuple(reasons_of(ranked, slot, snapshot) for slot in range(len(positions))),
        tuple(ranked.contributions),
    )
    return PoolRanked(
        order_value, kind="learned", objective_version=ranked.objective_version, head=head
    )


def _traced(
    ranked: Ranked, objective: PlacementObjective, candidates: int, snapshot: CatalogSnapshot
) -> dict[str, Any]:
    ids = snapshot.ids
    return {
        "kind": "learned",
        "model_version": ranked.model_version,
        "objective": objective.model_dump(),
        "objective_version": ranked.objective_version,
        "candidates": candidates,
        "items": [
            {
                "product_id": ids[int(i)],
                "score": round(float(ranked.scores[n]), 6),
                "probability": round(float(ranked.probabilities[n]), 6),
                "value": round(float(ranked.values[n]), 6),
                "explored": bool(ranked.explored[n]),
                "propensity": round(float(ranked.propensities[n]), 6),
                "contributions": rounded(ranked.contributions[n])
                if n < len(ranked.contributions)
                else {},
            }
            for n, i in enumerate(ranked.items.tolist())
        ],
    }


def rounded(contributions: dict[str, float]) -> dict[str, float]:
    return {k: round(float(v), 6) for k, v in contributions.items()}


def reasons_of(ranked: Ranked, slot: int, snapshot: CatalogSnapshot) -> tuple[ShownReason, ...]:
    """The ranker's reasons for one served item, as the slate shows them."""
    ids = snapshot.ids
    return tuple(
        ShownReason(
            kind=e.kind,
            source=e.source or "ranker",
            text=e.text,
            anchor=ids[e.anchor] if e.anchor is not None else None,
            label=None,
            fallback=e.fallback,
        )
        for e in (ranked.reasons[slot] if slot < len(ranked.reasons) else ())
    )


def _positions_of(items: IntArray, wanted: IntArray) -> IntArray:
    sorter = np.argsort(items)
    out: IntArray = sorter[np.searchsorted(items, wanted, sorter=sorter)]
    return out
