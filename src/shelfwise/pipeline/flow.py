"""One pipeline, online and offline: context → candidates → rules → rank → arrange → slate.

A :class:`Pipeline` is pure over one catalog snapshot and the parts it was made
of (a model bundle seen from that snapshot, a rulebook, a rank stage): it reads
no store and keeps nothing between runs but what its stages were given. The
serving :class:`~shelfwise.pipeline.recommender.Recommender` wraps it with the
slate cache, the decision log and metrics; evaluation, the promotion guard and
the simulator replay build one with :meth:`Pipeline.offline` and get the same
slates the store serves.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shelfwise.bundles import ModelBundle
from shelfwise.candidates.base import RecContext
from shelfwise.catalog import CatalogSnapshot
from shelfwise.pipeline.bundles import BundleView
from shelfwise.pipeline.defaults import BlendRanker
from shelfwise.pipeline.governed import RulebookArrange, RulebookSafety
from shelfwise.pipeline.learned import LearnedRank
from shelfwise.pipeline.pool import Trace
from shelfwise.pipeline.ports import Flow, Plan, Stage
from shelfwise.pipeline.request import RecommendRequest
from shelfwise.pipeline.slate import Mode, Slate, Versions, shown_items
from shelfwise.pipeline.stages import Blender, Candidates, build_context, plan_of
from shelfwise.rules import Rulebook
from shelfwise.serving.placements import Placement
from shelfwise.serving.session import SessionRecord


@dataclass(frozen=True)
class Pipeline:
    """The stages of one slate over one snapshot; :meth:`run` is a pure function of
    the request's context (exploration draws are seeded by the caller)."""

    snapshot: CatalogSnapshot
    candidates: Stage
    rules: Stage
    rank: Stage
    arrange: Stage
    mode: Mode = "model"  # "degraded": no model bundle, the degraded-mode candidates
    model_version: str | None = None  # the bundle's

    @classmethod
    def offline(
        cls,
        snapshot: CatalogSnapshot,
        model: ModelBundle | BundleView | Blender,
        rulebook: Rulebook | None = None,
        ranker: Stage | None = None,
    ) -> Pipeline:
        """A pipeline without a store or a Runtime: for evaluation, guards and replays.

        ``model``: a model bundle (or a view of one from ``snapshot``), or any blend
        of candidate sources over ``snapshot``'s indices (e.g. the fitted
        ``candidates.model.Artifacts.blend()`` of an offline run: then the slate
        says ``mode: model`` without a bundle version). ``rulebook``: the rules to
        apply (default: an empty rulebook, whose built-in in-stock rule still
        applies). ``ranker``: the rank stage (default: the blend ranker; a
        :class:`~shelfwise.pipeline.learned.LearnedRank` for the learned one)."""
        view = BundleView(model, snapshot) if isinstance(model, ModelBundle) else None
        if isinstance(model, BundleView):
            view = model.current()
        book = rulebook if rulebook is not None else Rulebook([], snapshot)
        rank = ranker or BlendRanker()
        every_source = not isinstance(rank, BlendRanker)  # the learned ranker reads each one
        reads = rank.ranker.spec.sources if isinstance(rank, LearnedRank) else None
        blend: Blender = view if view is not None else model  # type: ignore[assignment]
        return cls(
            snapshot,
            Candidates(blend, view, every_source=every_source, reads=reads),
            RulebookSafety(book),
            rank,
            RulebookArrange(book),
            model_version=view.version if view is not None else None,
        )

    @property
    def stages(self) -> tuple[Stage, Stage, Stage, Stage]:
        return (self.candidates, self.rules, self.rank, self.arrange)

    def context(
        self,
        req: RecommendRequest,
        placement: Placement,
        records: Sequence[SessionRecord],
        now: datetime,
        person_id: str | None,
        trace: Trace,
    ) -> RecContext:
        """The context stage: the request resolved into dense items of this snapshot
        (what the person owns read from the candidates' blend, as serving does)."""
        blend = self.candidates.blend if isinstance(self.candidates, Candidates) else None
        return build_context(req, placement, self.snapshot, records, now, person_id, trace, blend)

    def run(
        self,
        ctx: RecContext,
        plan: Plan | Placement,
        k: int,
        *,
        seed: int = 0,
        explain: bool = False,
        trace: Trace | None = None,
        seq: int | None = None,
    ) -> Slate:
        """One slate for ``ctx`` on ``plan`` (a placement, or its plan as an
        experiment arm shapes it). ``trace``: the caller's (it may hold notes
        already); by default one is kept when ``explain``."""
        trace = trace if trace is not None else Trace(enabled=explain)
        return self.run_many([Run(ctx, plan, k, seed, explain, trace, seq)])[0]

    def run_many(self, runs: Sequence[Run]) -> list[Slate]:
        """:meth:`run` of each of ``runs``, stage by stage: every run through the
        candidates, then every run through the rules, and so on (a batch: each stage's
        tables stay in the CPU's caches from one run to the next; a stage with a
        ``run_many`` takes them all at once, the learned rank stage asking its model
        once for all). Each slate is the one :meth:`run` gives."""
        flows = [self._start(r.ctx, r.plan, r.k, r.seed, r.trace, r.seq) for r in runs]
        for stage in self.stages:
            many = getattr(stage, "run_many", None)
            if many is None:
                flows = [self._through((stage,), f) for f in flows]
                continue
            t = time.perf_counter()
            flows = many(flows)
            each = (time.perf_counter() - t) * 1e3 / max(len(flows), 1)
            for f in flows:  # a stage that ran them together: its time shared out evenly
                f.trace.stages[stage.name] = each
        slates = []
        for r, flow in zip(runs, flows, strict=True):
            filled, sizes = self._filled(flow, r.ctx)
            slates.append(self._slate(filled, r.explain, sizes))
        return slates

    def _filled(self, flow: Flow, ctx: RecContext) -> tuple[Flow, tuple[int, ...]]:
        """A slate the rules left short of ``k`` from a pool cut at its size (the chain
        had more to give): every stage again over a pool twice as deep, while the slate
        is short, the pool was cut and grows, up to :data:`DEEPEST` times the
        placement's ``max_candidates``. Each run is exactly the pipeline at that size:
        every rule holds, and a chain that has no more (a narrow placement) is not
        filled with anything else. Returns the flow served and the sizes its runs
        were asked (the last one served; ``learned_slates`` keeps them so)."""
        first = flow
        sizes: tuple[int, ...] = (flow.pool_size,)
        bound = DEEPEST * flow.plan.placement.max_candidates
        while short(flow) and cut(flow) and flow.pool_size < bound:
            size = min(2 * flow.pool_size, bound)
            trace = Trace(enabled=flow.trace.enabled)
            fresh = self._start(ctx, flow.plan, flow.k, flow.seed, trace, flow.seq, size)
            deeper = self._through(self.stages[:1], fresh)
            if len(deeper.candidates) <= len(flow.candidates):
                break  # the chain has nothing more: the slate stays as the rules left it
            flow = self._through(self.stages[1:], deeper)
            sizes = (*sizes, size)
        if flow is first:
            return flow, sizes
        assert flow.arranged is not None and first.arranged is not None
        first.trace.adopt(flow.trace)
        served = flow.pool.items[flow.arranged.order]
        ids = self.snapshot.ids
        before = set(first.pool.items[first.arranged.order].tolist())  # a pin is in both
        first.trace.deepened = {
            "k": flow.k,
            "first_size": sizes[0],
            "first_items": len(first.arranged.order),
            "size": sizes[-1],
            "items": len(served),
            "filled": [ids[i] for i in served.tolist() if i not in before],
        }
        first.trace.notes.append(
            f"the rules left {first.trace.deepened['first_items']} of {flow.k} items of "
            f"{sizes[0]} candidates: asked {sizes[-1]} deep, {len(served)} served"
        )
        return flow._replace(trace=first.trace), sizes

    def allowed(self, ctx: RecContext, plan: Plan | Placement, k: int) -> Flow:
        """The flow as :meth:`run` gives it to the rank stage: the candidates and what
        the rules allow of them (the exposure cap is calibrated on exactly this,
        ``pipeline/exposure.py``)."""
        start = self._start(ctx, plan, k, 0, Trace(enabled=False), None)
        return self._through(self.stages[:2], start)

    def _start(
        self,
        ctx: RecContext,
        plan: Plan | Placement,
        k: int,
        seed: int,
        trace: Trace,
        seq: int | None,
        size: int = 0,
    ) -> Flow:
        """A new flow for ``ctx`` (its pool ``size`` deep; 0: ``max_candidates``)."""
        if isinstance(plan, Placement):
            plan = plan_of(plan)
        seq = self.snapshot.seq if seq is None else seq
        trace.keep_context(ctx, self.snapshot)
        return Flow(self.snapshot, ctx, plan, k, seed, trace, seq, size=size)

    @staticmethod
    def _through(stages: Sequence[Stage], flow: Flow) -> Flow:
        """``flow`` on through ``stages``, each one's time into its trace."""
        trace = flow.trace
        t = time.perf_counter()
        for stage in stages:
            flow = stage.run(flow)
            now = time.perf_counter()
            trace.stages[stage.name] = (now - t) * 1e3
            t = now
        return flow

    def _slate(self, flow: Flow, explain: bool, sizes: tuple[int, ...] = ()) -> Slate:
        ranked = flow.ranked
        assert ranked is not None
        versions = Versions(
            model=self.model_version,
            rulebook=self.rules.version,
            ranker=ranked.kind,
            objective=ranked.objective_version,
        )
        return Slate(
            placement=flow.plan.placement.name,
            mode=self.mode,
            items=shown_items(flow, explain),
            versions=versions,
            trace=flow.trace,
            candidates=flow.candidates,
            sizes=sizes or (flow.pool_size,),
        )


@dataclass(frozen=True)
class Run:
    """One slate of :meth:`Pipeline.run_many`: :meth:`Pipeline.run`'s arguments."""

    ctx: RecContext
    plan: Plan | Placement
    k: int
    seed: int
    explain: bool
    trace: Trace
    seq: int | None = None


DEEPEST = 4  # a short slate's pool is asked at most this many times ``max_candidates``


def short(flow: Flow) -> bool:
    """The arranged slate holds fewer than ``k`` items."""
    return flow.arranged is not None and len(flow.arranged.order) < flow.k


def cut(flow: Flow) -> bool:
    """The chain gave as many candidates as it was asked for: it may have more."""
    given = len(flow.proposals[0].items) if flow.proposals else len(flow.candidates)
    return given >= flow.pool_size
