"""The learned ranker (``shelfwise.ranking``) in the request path.

When the served model bundle holds a ranker (``shelfwise train --ranker``), it
orders the candidates the safety rules allowed; the placement's objective
blend becomes the ranker's objective. The ranker is loaded once per bundle
(keyed by the bundle's version), never per request. Its served head keeps the
ranker's order (exploration slots included) through the arrangement; the rest
of the allowed pool follows, in blend order, so pins, de-duplication and caps
still have items to fill with.

**Kept ranked orders.** Serving reads the clock of the sources and of the
ranker's features at the end of the request's *time bucket*
(``ranking.time_bucket_seconds``, 60 s by default; :func:`at_bucket`): the rules
still see the exact clock (their time windows), and the decision log the exact
time. So within a bucket a context (placement, person, viewed items, cart, live
session, segment) gets the same candidates and the same scores, and both are
kept (:class:`KeptOrders`, per worker): the candidates from the sources, and
the ranker's :class:`~shelfwise.ranking.ranker.Scored` order with its
exploration plan. Each request still draws its own exploration from the plan
(seeded by the request), and every kept entry is checked on read like the slate
cache's (``pipeline/kept.py``): a product it is made of that changed since, a
grown catalog, another bundle or ranker drop it; a scored order is used only for
exactly the pool the rules allowed this time.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import numpy as np

from shelfwise.candidates.base import FloatArray, IntArray, Proposal, RecContext, shallower
from shelfwise.candidates.neighbours import member
from shelfwise.catalog import CatalogSnapshot
from shelfwise.config import Settings
from shelfwise.errors import ShelfwiseError
from shelfwise.pipeline.bundles import BundleView
from shelfwise.pipeline.kept import KeptStore, depends_on
from shelfwise.pipeline.memo import impersonal
from shelfwise.pipeline.pool import Pool, Trace
from shelfwise.pipeline.ports import Flow, Head, Plan, ShownReason, StageName
from shelfwise.pipeline.ports import Ranked as PoolRanked
from shelfwise.ranking.candidates import CandidateSet
from shelfwise.ranking.explain import SnapshotNames
from shelfwise.ranking.explore import ExplorePlan, chosen_of, request_draw
from shelfwise.ranking.exposure import EXPOSURE_FOLDER, ExposureFloors, Floors
from shelfwise.ranking.history import epoch
from shelfwise.ranking.objective import PlacementObjective, RankingSettings
from shelfwise.ranking.ranker import Ranked, Ranker, Scored, ranker_of_bundle
from shelfwise.serving.placements import Placement

log = logging.getLogger("shelfwise.pipeline")

SOURCE_DEPTH = 100  # candidates asked of each source (the ranker trains with this depth)


def at_bucket(ctx: RecContext, seconds: int) -> RecContext:
    """``ctx`` with its clock at the end of its time bucket of ``seconds`` (0: as it is).

    The end, not the start: every live-session event happened before it, so no
    feature sees an event from its future."""
    if seconds <= 0:
        return ctx
    t = ctx.now.timestamp()
    end = math.ceil(t / seconds) * seconds
    return ctx if end == t else replace(ctx, now=ctx.now + timedelta(seconds=end - t))


def context_key(ctx: RecContext) -> tuple[Hashable, ...]:
    """Everything of a context the sources and the ranker read (its clock included)."""
    segment = tuple(sorted(ctx.segment.items())) if ctx.segment else ()
    return (
        ctx.placement,
        ctx.person_id,
        ctx.context_items,
        ctx.cart_items,
        ctx.session,
        segment,
        ctx.now,
    )


def candidates_key(ctx: RecContext) -> tuple[Hashable, ...]:
    """What a context's candidates are made of: :func:`context_key`, but the month for
    the clock of an impersonal context (no person, session or cart), whose sources read
    nothing else of it (``pipeline/proposals.py``): its kept candidates serve every time
    bucket of the month (the ranker still scores each bucket at its own clock)."""
    key = context_key(ctx)
    return (*key[:-1], ctx.now.month) if impersonal(ctx) else key


KeptCandidates = tuple[tuple[Proposal, ...], Pool]


class KeptOrders:
    """What the learned path keeps per (context, time bucket), ``max_entries`` of each:
    the candidates (every source's proposal and the pool, before any rule) and the
    scored orders."""

    def __init__(self, max_entries: int) -> None:
        self.candidates: KeptStore[KeptCandidates] = KeptStore(max_entries)
        self.scored: KeptStore[tuple[IntArray, Scored]] = KeptStore(max_entries)

    @property
    def enabled(self) -> bool:
        return self.candidates.enabled

    def keep_candidates(
        self, key: Hashable, stamp: Hashable, entry: KeptCandidates, ctx: RecContext, seq: int
    ) -> None:
        proposals, pool = entry
        for p in proposals:
            p.items.flags.writeable = False  # shared by later requests: nobody may edit it
            p.scores.flags.writeable = False
        for a in (pool.items, pool.score, pool.hits, pool.reason_of):
            a.flags.writeable = False
        deps = depends_on(pool.items, *context_items(ctx))
        self.candidates.put(key, stamp, entry, deps, seq)


def context_items(ctx: RecContext) -> tuple[Sequence[int], ...]:
    """The items of a context whose catalog columns the sources and features read."""
    return ctx.context_items, ctx.cart_items, [e.item for e in ctx.session]


class LearnedRankers:
    """The rankers of the served bundle, one per training task, each loaded on the
    first request after a swap that asks for it."""

    def __init__(self, settings: Settings, snapshot: CatalogSnapshot) -> None:
        self.settings = settings
        self.snapshot = snapshot
        self._version: str | None = None
        self._rankers: dict[str, Ranker | None] = {}
        self._floors: dict[str, Floors | None] = {}
        self._objectives: dict[tuple[str, Any], PlacementObjective] = {}

    def of(self, view: BundleView, task: str = "requests") -> Ranker | None:
        """The bundle's ranker of ``task`` (``Placement.ranker``); the ``requests``
        ranker when the bundle has none of that task (a bundle trained before it)."""
        if view.version != self._version:
            self._rankers = {}
            self._floors = {}
            self._version = view.version
        if task not in self._rankers:
            self._rankers[task] = self._load(view, task)
        ranker = self._rankers[task]
        if ranker is None and task != "requests":
            return self.of(view)
        if ranker is None or not view.identity:
            # The ranker's state is indexed like the bundle; a reordered catalog
            # would mix two index spaces: rank with the blend instead.
            return None
        return ranker

    def _load(self, view: BundleView, task: str) -> Ranker | None:
        try:
            return ranker_of_bundle(
                view.bundle.path,
                SnapshotNames(self.snapshot),
                self.settings.ranking,
                view.version,
                task,
            )
        except (OSError, ValueError, ShelfwiseError) as e:
            log.warning(
                "bundle %s: %s ranker not loaded (%s); ranking with the blend",
                view.version,
                task,
                e,
            )
            return None

    def floors(self, view: BundleView, placement: Placement) -> Floors | None:
        """The exposure cap's floors of ``placement`` over the catalog, as calibrated for
        the served bundle (``ranking.exposure``); None without a cap, or when the bundle
        was calibrated for none or for another cap (logged: retrain to apply it)."""
        cap = placement.objective.exposure_cap
        if cap is None:
            return None
        if view.version != self._version:
            self.of(view)  # forget the old bundle's rankers and floors
        key = placement.name
        if key not in self._floors:
            got = ExposureFloors.load(view.bundle.path / EXPOSURE_FOLDER, placement.name)
            if got is None or abs(got.cap - cap) > 1e-12 or got.k != placement.k:
                log.warning(
                    "bundle %s: no exposure floors for %s at cap %s (k %s); retrain to apply it",
                    view.version,
                    placement.name,
                    cap,
                    placement.k,
                )
                self._floors[key] = None
            else:
                self._floors[key] = got.dense(self.snapshot.ids)
        return self._floors[key]

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
        update={
            "click": o.engagement,
            "revenue": o.revenue,
            "margin": o.margin,
            "money_cap": o.money_cap,
            "popularity_penalty": o.popularity_penalty,
            "chain_weight": o.chain_weight,
            "exposure_cap": o.exposure_cap,
        }
    )


def source_proposals(
    ctx: RecContext,
    view: BundleView,
    depth: int,
    only: Sequence[str] | None = None,
    asked: Mapping[str, Proposal] | None = None,
    asked_at: int = 0,
) -> list[Proposal]:
    """Every source's own proposal (or those an experiment arm keeps), in this
    worker's index space. ``asked``: proposals the blend already asked of its sources
    at depth ``asked_at`` (in the bundle's index space), reused where they say exactly
    what the source proposes at ``depth`` (``candidates.base.shallower``)."""
    bctx = view.context(ctx)
    out = []
    for name, src in view.blend.sources.items():
        if only is not None and name not in only:
            continue
        got = asked.get(name) if asked is not None else None
        if got is not None and getattr(src, "prefix_exact", False):
            got = shallower(got, asked_at, depth)
        else:
            got = None
        out.append(view.proposal(got if got is not None else view.ask(name, bctx, depth)))
    return out


@dataclass(frozen=True)
class LearnedRank:
    """The rank stage with the bundle's ranker: it orders the pool the rules allowed
    (reading every source's own proposal, as in training); the arrangement keeps its
    order first, and its head carries the served scores, reasons and propensities."""

    ranker: Ranker
    objective: PlacementObjective
    name: StageName = "rank"
    bucket: int = 0  # the time bucket's seconds (0: the exact clock)
    kept: KeptOrders | None = None  # serving: scored orders kept per (context, bucket)
    floors: Floors | None = None  # the exposure cap's, over the catalog (None: no cap)

    @property
    def version(self) -> str:
        return self.ranker.version

    def run(self, flow: Flow) -> Flow:
        return self.run_many([flow])[0]

    def run_many(self, flows: Sequence[Flow]) -> list[Flow]:
        """:meth:`run` of each flow (a batch, ``Pipeline.run_many``): each one's order
        scored (or kept) as alone, the contributions of every row their draws serve
        asked of the model in one call (``Ranker.explain_draws``)."""
        ctxs = [at_bucket(f.ctx, self.bucket) for f in flows]
        scored = [self._scored(f, ctx) for f, ctx in zip(flows, ctxs, strict=True)]
        picks = [pick_of(self.ranker, ctx, f.seed) for f, ctx in zip(flows, ctxs, strict=True)]
        chains = [chain_sources(f.plan) for f in flows]
        # (one flow: its draw explains its rows itself, as it always did)
        for chain in dict.fromkeys(chains) if len(flows) > 1 else ():
            self.ranker.explain_draws(
                [
                    (s, ctx, which)
                    for s, ctx, which, c in zip(scored, ctxs, picks, chains, strict=True)
                    if c == chain
                ],
                chain,
            )
        out = []
        for f, ctx, s, which, chain in zip(flows, ctxs, scored, picks, chains, strict=True):
            ranked = rank_pool(
                self.ranker, ctx, f.pool, s, f.snapshot, self.objective, f.trace, which,
                self.floors, chain,
            )  # fmt: skip
            out.append(f._replace(ranked=ranked))
        return out

    def _scored(self, flow: Flow, ctx: RecContext) -> Scored:
        """The flow's scored order: kept for its context and pool, else scored (and kept)."""
        keeper = self._keeper(flow, ctx)
        got = keeper.get(flow.pool.items) if keeper is not None else None
        if got is None:
            allowed = allowed_candidates(self.ranker, flow.pool, flow.proposals)
            got = self.ranker.scored(
                ctx, allowed, flow.snapshot, self.objective, flow.k, floors=self.floors
            )
            if keeper is not None:
                keeper.put(flow.pool.items, got, allowed.items)
        return got

    def valued(self, flow: Flow) -> tuple[IntArray, FloatArray]:
        """Every candidate the rules allowed (``flow``: as the rules stage left it) and
        its expected value, as :meth:`run` ranks them before the exposure cap: what
        the cap is calibrated on (``pipeline/exposure.py``)."""
        items, expected = self.valued_at(flow, (flow.ctx,))
        return items, expected[0]

    def valued_at(self, flow: Flow, contexts: Sequence[RecContext]) -> tuple[IntArray, FloatArray]:
        """:meth:`valued` of the same allowed candidates in each of ``contexts``: the
        flow's request at other clocks, whose candidates and rules' decisions
        ``flow`` is (the caller knows they are the same). Expected values have a row
        per context (only the ranker's features read the clock: one call of the
        model for all)."""
        allowed = allowed_candidates(self.ranker, flow.pool, flow.proposals)
        at = [at_bucket(c, self.bucket) for c in contexts]
        prob, values = self.ranker.valued_at(at, allowed, flow.snapshot, self.objective)
        expected: FloatArray = prob * values[None, :]
        return allowed.items, expected

    def _keeper(self, flow: Flow, ctx: RecContext) -> _Keeper | None:
        if self.kept is None or not self.kept.enabled or self.bucket <= 0:
            return None
        key = scored_key(ctx, flow.k, flow.plan, self.objective, flow.pool_size)
        stamp = (len(flow.snapshot), self.ranker.version)
        return _Keeper(self.kept.scored, key, stamp, flow, ctx)


def chain_sources(plan: Plan) -> frozenset[str]:
    """The sources of the plan's chain (blended and fallbacks): what made the pool."""
    return frozenset((*plan.chain.blend, *plan.chain.fallbacks))


def scored_key(
    ctx: RecContext, k: int, plan: Plan, objective: PlacementObjective, size: int
) -> tuple[Hashable, ...]:
    """The key of a kept scored order: the context at its bucket's clock, the slate's
    size, the plan's sources and chain, the objective, the candidates asked (``size``:
    deeper than ``max_candidates`` when the rules left the slate short)."""
    return (*context_key(ctx), k, plan.sources, id(plan.chain), objective, size)


def pick_of(ranker: Ranker, ctx: RecContext, seed: int) -> int:
    """Which of the plan's draws the request takes (``seed``: the request's; ``ctx``
    at its bucket's clock). The plan's draws are the context's (``Ranker.context_rng``)."""
    s = ranker.settings.explore_seed
    return request_draw(s, ctx.person_id or "", ctx.placement, str(epoch(ctx.now)), str(seed))


@dataclass
class LearnedShelf:
    """The served slates of one (context, time bucket), one per exploration pick: each
    request draws its pick from the plan and is served the slate made for that pick
    (``pipeline/recommender.py``; the slate cache's checks, ``pipeline/slates.py``)."""

    plan: ExplorePlan
    items: IntArray  # the catalog items of the plan's pool
    answers: dict[tuple[int, ...], Any]  # pick -> KeptSlate

    @classmethod
    def of(cls, scored: Scored) -> LearnedShelf:
        return cls(scored.plan, scored.cands.items[scored.plan.pool], {})

    def pick(self, which: int) -> tuple[int, ...]:
        """The catalog items draw ``which`` explores (() when no draw decides them)."""
        chosen = chosen_of(self.plan, which)
        return () if chosen is None else tuple(self.items[chosen].tolist())


@dataclass(frozen=True)
class _Keeper:
    """One request's access to the kept scored orders."""

    store: KeptStore[tuple[IntArray, Scored]]
    key: Hashable
    stamp: Hashable
    flow: Flow
    ctx: RecContext

    def get(self, pool_items: IntArray) -> Scored | None:
        got = self.store.get(self.key, self.stamp, self.flow.snapshot.changed_seq)
        if got is None or not np.array_equal(got[0], pool_items):
            return None  # the rules allowed another pool this time
        return got[1]

    def put(self, pool_items: IntArray, scored: Scored, candidates: IntArray) -> None:
        """Keep ``scored``, made of ``candidates`` (every candidate's features and order:
        a change to any of them may change the order)."""
        deps = depends_on(candidates, *context_items(self.ctx))
        entry = (pool_items, scored)
        self.store.put(self.key, self.stamp, entry, deps, self.flow.seq)


def rank_pool(
    ranker: Ranker,
    ctx: RecContext,
    pool: Pool,
    scored: Scored,
    snapshot: CatalogSnapshot,
    objective: PlacementObjective,
    trace: Trace,
    which: int = 0,
    floors: Floors | None = None,
    chain: frozenset[str] = frozenset(),
) -> PoolRanked:
    """Rank the allowed pool by its ``scored`` order; the arrangement's value keeps the
    ranker's order first.

    ``which``: the request's exploration draw (``pick_of``); ``floors``: the
    placement's exposure cap (``ranking.exposure``); ``chain``: the sources of the
    placement's chain, whose reasons speak before the ranker's other sources'."""
    ranked = ranker.draw(scored, ctx, which, chain=chain)
    positions = _positions_of(pool.items, ranked.items)
    # Below the head: the rest of the pool in blend order (scores are in (0, 1]), what
    # the exposure cap demoted last (the arrangement fills a slot it empties with them
    # only when nothing else is left). With the cap, the ranker's next best come
    # first, in its order, and the demoted last in its order too: a slot the
    # arrangement empties (one variant of a group) goes to the item the cap's
    # calibration gave it to.
    order_value: FloatArray = pool.score * 1e-3
    below = member(pool.items, scored.below_floor)
    if below.any():
        others = order_value[~below]
        least = float(others[others > 0].min()) if (others > 0).any() else 1e-3
        order_value = np.where(below, pool.score * least * 0.5, order_value)
        if len(scored.fill):  # with the cap: the demoted in the ranker's order too
            last = _positions_of(pool.items, scored.below_floor)
            order_value[last] = least * 0.5 * (1.0 - np.arange(len(last)) / len(last))
    if len(scored.fill):
        fill = _positions_of(pool.items, scored.fill)
        order_value[fill] = 1.0 - 0.5 * np.arange(len(fill), dtype=np.float64) / len(fill)
    order_value[positions] = 1.0 + np.arange(len(positions), 0, -1, dtype=np.float64)
    if trace.enabled:
        trace.ranker = _traced(ranked, objective, scored.n_candidates, snapshot)
        trace.ranker["task"] = ranker.task
        if objective.exposure_cap is not None:
            trace.ranker["exposure"] = _exposure_traced(scored, objective, floors, snapshot)
    head = Head(
        positions,
        ranked.scores,
        ranked.explored,
        ranked.propensities,
        tuple(reasons_of(ranked, slot, snapshot) for slot in range(len(positions))),
        ranked.contributions,
    )
    return PoolRanked(
        order_value, kind="learned", objective_version=ranked.objective_version, head=head
    )


def allowed_candidates(ranker: Ranker, pool: Pool, proposals: Sequence[Proposal]) -> CandidateSet:
    """The pool the rules allowed as the ranker's candidates (every source's proposal
    read as its features)."""
    return CandidateSet.of_items(proposals, ranker.spec.sources, pool.items)


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


def _exposure_traced(
    scored: Scored,
    objective: PlacementObjective,
    floors: Floors | None,
    snapshot: CatalogSnapshot,
) -> dict[str, Any]:
    """The exposure cap's part of the trace: the items it demoted out of the best k
    (each with its margin over the best candidate left out, and its floor)."""
    ids = snapshot.ids
    return {
        "cap": objective.exposure_cap,
        "calibrated": floors is not None,
        "demoted": [
            {
                "product_id": ids[item],
                "action": "demoted",
                "reason": "exposure cap: this item already takes its share of the "
                "placement's slates where it fits better",
                "margin": round(rel, 6),
                "floor": round(float(floors.values[item]), 6) if floors is not None else None,
            }
            for item, rel in scored.demoted
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
