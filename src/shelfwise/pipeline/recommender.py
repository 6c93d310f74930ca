"""Serving around the pipeline: one call turns a request into a recorded, explained slate.

The :class:`~shelfwise.pipeline.flow.Pipeline` computes the slate; the
:class:`Recommender` adds what only a running store has: the person behind the
request's id, the live session, the experiment arm, the current rulebook and
bundle (a pipeline is kept per rulebook, bundle and ranker), the kept-slate
cache, the decision log and metrics.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
import zlib
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy.exc import SQLAlchemyError

from shelfwise.candidates.base import IntArray, RecContext
from shelfwise.catalog import CatalogSnapshot
from shelfwise.config import Settings
from shelfwise.experiments.assignment import Assignment
from shelfwise.experiments.model import Arm
from shelfwise.pipeline.bundles import BundleView
from shelfwise.pipeline.defaults import Availability, BlendRanker, PlainArranger
from shelfwise.pipeline.encode import Served, kept_trace, logged_json, slate_json
from shelfwise.pipeline.flow import Pipeline, Run
from shelfwise.pipeline.governed import Governor, RulebookArrange, RulebookSafety
from shelfwise.pipeline.kept import depends_on
from shelfwise.pipeline.learned import KeptOrders, LearnedRank, LearnedRankers
from shelfwise.pipeline.learned_slates import LearnedSlates, Shelved
from shelfwise.pipeline.memo import CandidateMemo
from shelfwise.pipeline.pool import Trace
from shelfwise.pipeline.ports import Assigner, Plan, Stage
from shelfwise.pipeline.proposals import ProposalMemo
from shelfwise.pipeline.request import RecommendRequest
from shelfwise.pipeline.slate import Slate
from shelfwise.pipeline.slates import KeptSlate, SlateCache, nothing_personal, windows_open
from shelfwise.pipeline.stages import Blender, Candidates, build_context, plan_of
from shelfwise.ranking.ranker import Ranker
from shelfwise.rules import Rulebook
from shelfwise.serving.decisions import Decision, DecisionLog, DecisionSink
from shelfwise.serving.freshness import ChangeClock, refresh_if_changed
from shelfwise.serving.identity import PersonCache
from shelfwise.serving.metrics import ServingMetrics
from shelfwise.serving.placements import Objective, Placement, Placements
from shelfwise.serving.session import SessionRecord, SessionState
from shelfwise.store.types import utcnow

if TYPE_CHECKING:
    from shelfwise.bundles import ModelBundle

log = logging.getLogger("shelfwise.pipeline")

Shelf = tuple[Hashable, Hashable]  # the slate cache's (key, stamp)
# Told the person a request resolved to before anything is served; raises to refuse it.
Guard = Callable[[str], None]


class RecIds:
    """Slate ids unique across workers without coordination, sortable by time:
    milliseconds, a random tag per process, a counter (29 hex characters).

    A ``tag`` and a ``clock`` (milliseconds) given make the ids, and so the
    exploration drawn from them, reproducible (a simulator's replay)."""

    def __init__(self, tag: str | None = None, clock: Callable[[], int] | None = None) -> None:
        self.tag = os.urandom(5).hex() if tag is None else tag
        self.clock = clock or (lambda: time.time_ns() // 1_000_000)
        self.counter = itertools.count()

    def next(self) -> str:
        return f"{self.clock():011x}{self.tag}{next(self.counter) & 0xFFFFFFFF:08x}"


@dataclass
class _Request:
    """One request as serving resolved it, before the pipeline runs."""

    req: RecommendRequest
    placement: Placement
    k: int
    rec_id: str
    trace: Trace
    keep_trace: bool  # the trace is kept: explained, or sampled into the decision log
    now: datetime
    person: str | None
    ctx: RecContext
    assignment: Assignment | None
    plan: Plan
    pipeline: Pipeline
    book: Rulebook | None
    seq: int  # the snapshot's change sequence after this request's refresh
    started: float
    record: bool  # the slate goes into the decision log
    shelf: Shelf | None = None
    learned: Shelved | None = None  # a learned slate's place among the kept ones


class Recommender:
    def __init__(
        self,
        settings: Settings,
        snapshot: CatalogSnapshot,
        placements: Placements,
        sessions: SessionState,
        decisions: DecisionLog,
        metrics: ServingMetrics,
        degraded: Blender,
        *,
        rules: Governor | None = None,
        assigner: Assigner | None = None,
        bundle_of: Callable[[], ModelBundle | None] | None = None,
        clock: ChangeClock | None = None,
        persons: PersonCache | None = None,
    ) -> None:
        self.settings = settings
        self.snapshot = snapshot
        self.placements = placements
        self.sessions = sessions
        # the log; a forked batch worker holds its decisions instead (pipeline/batch.py)
        self.decisions: DecisionSink = decisions
        self.metrics = metrics
        self.rules = rules  # the merchant's rulebook; None = availability only
        self.assigner = assigner
        self.bundle_of = bundle_of or (lambda: None)
        self._view: BundleView | None = None
        self.baseline_blend = degraded  # candidates without a bundle (``pipeline.assembly``)
        self.clock = clock or ChangeClock(snapshot.repo.db)
        # A request's person/anonymous id -> the person id through the identity graph,
        # by the rule training keys people by (``contracts.identity.person_of``), so
        # trained histories are found (None: ids are taken as given).
        self.persons = persons
        self.rec_ids = RecIds()
        self.memo = CandidateMemo()
        self.slates = SlateCache(settings.slate_cache_size)
        self.learned = LearnedRankers(settings, snapshot)
        self.kept_orders = KeptOrders(settings.ranking.kept_orders)
        self.learned_slates = LearnedSlates(settings.ranking.kept_orders)
        self._children: dict[tuple[object, ...], Any] = {}
        self._plans: dict[tuple[str, ...], Plan] = {}
        self._pipelines: dict[tuple[int, ...], Pipeline] = {}
        self._made_of: tuple[object, ...] = ()  # the bundle, rulebook and blend they use
        self._latency = {p.name: metrics.latency.labels(p.name) for p in placements}

    # -- what a request is served with ------------------------------------------

    def assign(
        self, placement: Placement, unit: str | None, now: datetime, trace: Trace
    ) -> Assignment | None:
        """The experiment arm of the person (or, anonymous, the session) on this placement."""
        if self.assigner is None or unit is None:
            return None
        try:
            return self.assigner.assign(placement.name, unit, now)
        except SQLAlchemyError:
            trace.notes.append("experiment store unreachable: no experiment arm")
            return None

    def plan(self, placement: Placement, assignment: Assignment | None) -> Plan:
        """The placement as an experiment arm changes it, with its model and degraded chains.

        A holdout arm gets the plain popularity baseline; other arms may replace the
        sources and the objective blend."""
        key: tuple[str, ...] = (placement.name,)
        if assignment is not None:
            key = (
                placement.name,
                assignment.experiment_id,
                str(assignment.experiment_version),
                assignment.arm.name,
            )
        got = self._plans.get(key)
        if got is None:
            arm = assignment.arm if assignment is not None else None
            got = self._plans[key] = arm_plan(placement, arm)
        return got

    def bundle_view(self) -> BundleView | None:
        """The loaded bundle as seen from this snapshot (re-made after a reload)."""
        bundle = self.bundle_of()
        if bundle is None:
            return None
        view = self._view
        if view is None or view.bundle is not bundle:
            memo = ProposalMemo(self.settings.ranking.kept_proposals)
            view = self._view = BundleView(bundle, self.snapshot, memo)
        return view.current()

    def bundle_age_seconds(self) -> float:
        view = self.bundle_view()
        return time.time() - view.created_at if view is not None else -1.0

    def pipeline(
        self, view: BundleView | None, book: Rulebook | None, ranker: Ranker | None, plan: Plan
    ) -> Pipeline:
        """The pipeline of this bundle, rulebook and ranker (kept until one of them moves)."""
        made_of = (view, book, self.baseline_blend)
        if made_of != self._made_of:
            self._pipelines.clear()  # nothing keeps an old bundle or rulebook alive
            self._made_of = made_of
        objective = self.learned.objective(plan.placement) if ranker is not None else None
        floors = (
            self.learned.floors(view, plan.placement)
            if ranker is not None and view is not None
            else None
        )
        key = (id(ranker), id(objective), id(floors))
        got = self._pipelines.get(key)
        if got is None:
            rank: Stage = _BLEND
            if ranker is not None and objective is not None:
                bucket = self.settings.ranking.time_bucket_seconds
                rank = LearnedRank(
                    ranker, objective, bucket=bucket, kept=self.kept_orders, floors=floors
                )
            got = self._pipelines[key] = self._assemble(view, book, rank)
        return got

    def _assemble(self, view: BundleView | None, book: Rulebook | None, rank: Stage) -> Pipeline:
        rules: Stage = RulebookSafety(book) if book is not None else Availability()
        arrange: Stage = RulebookArrange(book) if book is not None else PlainArranger()
        reads = rank.ranker.spec.sources if isinstance(rank, LearnedRank) else None
        candidates = _candidates(self, view, reads)
        return Pipeline(
            self.snapshot,
            candidates,
            rules,
            rank,
            arrange,
            mode="model" if view is not None else "degraded",
            model_version=view.version if view is not None else None,
        )

    def resolve_person(self, any_id: str) -> str:
        """The person behind a request's id, as of the identity graph the clock last read."""
        if self.persons is None:
            return any_id
        return self.persons.person(any_id, self.clock.identity)

    def person_of(self, any_id: str | None) -> str | None:
        return None if any_id is None else self.resolve_person(any_id)

    def refresh_catalog(self, trace: Trace) -> None:
        """Pick up stock/price changes; with the store down, keep serving what is in memory."""
        _note_stale(trace, self._refreshed())

    def _refreshed(self) -> bool:
        """Stock/price changes picked up: False when the store is unreachable."""
        try:
            fresh = refresh_if_changed(self.snapshot, self.clock)
        except SQLAlchemyError:
            fresh = False
        self.metrics.snapshot_age.set(self.snapshot.age_seconds)
        return fresh

    # -- serving -------------------------------------------------------------------

    def recommend(
        self,
        req: RecommendRequest,
        now: datetime | None = None,
        *,
        record: bool = True,
        records: Sequence[SessionRecord] | None = None,
        rec_id: str | None = None,
    ) -> dict[str, Any]:
        """One slate. ``records`` stand in for the live session (batch slates).

        ``rec_id``: serve the request again under the id of a slate already logged,
        so its exploration draws (seeded by the id) are that slate's; only for an
        unrecorded run (``record=False``), since the id is the logged slate's own."""
        if rec_id is not None and record:
            raise ValueError("a slate served under a given rec_id is not recorded")
        served = self._serve(req, now, record, records, rec_id)
        if isinstance(served, dict):
            return served
        kept, rec_id = served
        slate: dict[str, Any] = orjson.loads(kept.answer(rec_id))
        return slate

    def recommend_json(
        self, req: RecommendRequest, now: datetime | None = None, guard: Guard | None = None
    ) -> bytes:
        """One slate as the JSON answer of ``/v1/recommendations`` (a kept slate is
        spliced in as it is kept, never decoded)."""
        served = self._serve(req, now, True, None, None, guard)
        if isinstance(served, dict):
            return orjson.dumps(served)
        kept, rec_id = served
        return kept.answer(rec_id)

    def recommend_many(
        self,
        reqs: Sequence[RecommendRequest],
        now: datetime,
        records: Sequence[Sequence[SessionRecord]],
    ) -> list[dict[str, Any]]:
        """The slates of many requests at one clock (``records``: each one's stand-in for
        the live session), each served and recorded as :meth:`recommend` serves it: a
        batch (``pipeline/batch.py``). The slates computed run through their pipeline
        stage by stage (:meth:`Pipeline.run_many`; the latency metric counts each one
        its share of the run); a request of the same context as one computed here
        waits for it, and is served what that one kept."""
        fresh = self._refreshed()  # once: the batch's slates see the catalog as of now
        resolved = [
            self._resolve(req, now, True, recs, None, fresh=fresh)
            for req, recs in zip(reqs, records, strict=True)
        ]
        answers: list[dict[str, Any] | tuple[KeptSlate, str] | None] = [None] * len(reqs)
        runs: dict[int, list[int]] = {}  # a pipeline's id -> the requests it computes
        computing: set[Hashable] = set()
        waiting: list[int] = []
        for n, r in enumerate(resolved):
            context = _context_of(r)
            if context is not None and context in computing:
                waiting.append(n)
                continue
            r.started = time.perf_counter()  # (not the resolving of the others)
            answers[n] = self._kept_answer(r)
            if answers[n] is None:
                if context is not None:
                    computing.add(context)
                runs.setdefault(id(r.pipeline), []).append(n)
        for group in runs.values():
            batch = [resolved[n] for n in group]
            t = time.perf_counter()
            slates = batch[0].pipeline.run_many([_run_of(r) for r in batch])
            share = (time.perf_counter() - t) / len(batch)
            for n, r, slate in zip(group, batch, slates, strict=True):
                r.started = time.perf_counter() - share  # its latency: its share of the run
                answers[n] = self._answer(r, slate)
        for n in waiting:
            r = resolved[n]
            r.started = time.perf_counter()  # its latency: its own serving, not the wait
            answers[n] = self._kept_answer(r) or self._answer(
                r, r.pipeline.run_many([_run_of(r)])[0]
            )
        out = []
        for a in answers:
            assert a is not None
            out.append(a if isinstance(a, dict) else orjson.loads(a[0].answer(a[1])))
        return out

    def _serve(
        self,
        req: RecommendRequest,
        now: datetime | None,
        record: bool,
        records: Sequence[SessionRecord] | None,
        rec_id: str | None,
        guard: Guard | None = None,
    ) -> dict[str, Any] | tuple[KeptSlate, str]:
        """The slate computed (its answer), or a kept one with this request's rec_id."""
        r = self._resolve(req, now, record, records, rec_id, guard)
        kept = self._kept_answer(r)
        if kept is not None:
            return kept
        return self._answer(r, r.pipeline.run_many([_run_of(r)])[0])

    def _kept_answer(self, r: _Request) -> tuple[KeptSlate, str] | None:
        """The kept slate this request is served (recorded as its own), if any."""
        if r.shelf is not None:
            kept = self._kept(r)
            if kept is not None:
                return kept, r.rec_id
        if r.learned is not None:
            kept = self._kept_learned(r, r.learned)
            if kept is not None:
                return kept, r.rec_id
        return None

    def _answer(self, r: _Request, slate: Slate) -> dict[str, Any]:
        """A computed slate's answer: counted, kept for the requests that may share it,
        recorded."""
        served = Served(r.rec_id, self.placements.version, r.assignment)
        answer = slate_json(slate, served, r.req.explain)
        self._observe(r.placement.name, slate.mode, slate.fallback_used, r.trace.drops, r.started)
        logged = [logged_json(i) for i in answer["items"]]
        if r.shelf is not None and not r.req.explain:
            self._keep(r, r.shelf, slate, answer, logged)
        if r.learned is not None:
            self._keep_learned(r, r.learned, slate, answer, logged)
        if r.record:
            trace = r.trace.as_dict() if r.keep_trace else None
            self._record(
                r, slate.mode, slate.versions.model, slate.versions.rulebook, logged, trace
            )
        return answer

    def _resolve(
        self,
        req: RecommendRequest,
        now: datetime | None,
        record: bool,
        records: Sequence[SessionRecord] | None,
        rec_id: str | None,
        guard: Guard | None = None,
        fresh: bool | None = None,
    ) -> _Request:
        """The request resolved: who asks, in which session and arm, served by which pipeline.
        ``fresh``: whether the catalog was refreshed just before (a batch's; None: now)."""
        started = time.perf_counter()
        placement = self.placements.get(req.placement)
        k = min(req.k or placement.k, self.settings.max_k)
        rec_id = rec_id or self.rec_ids.next()
        keep_trace = req.explain or (record and self.decisions.keeps_trace(rec_id))
        trace = Trace(enabled=keep_trace)
        _note_stale(trace, self._refreshed() if fresh is None else fresh)
        seq = self.snapshot.seq  # what kept entries made now are made of
        if records is None:
            records = self.sessions.read(req.session) if req.session else []
        now = now or utcnow()
        person = self.person_of(req.person)
        if guard is not None and person is not None:
            guard(person)  # whose history the caller may use (api/customers.py)
        view = self.bundle_view()
        ctx = build_context(req, placement, self.snapshot, records, now, person, trace, view)
        assignment = self.assign(placement, person or req.session, now, trace)
        plan = self.plan(placement, assignment)
        ranker = self._ranker(view, assignment, placement)
        if ranker is not None and view is not None and stranger(view, ranker, person):
            # Nothing the sources or the features read knows them: their context is an
            # anonymous one, and so is every such person's (one kept order serves all).
            ctx = replace(ctx, person_id=None)
        book = self.rules.book(trace, self.clock.rules_seq) if self.rules is not None else None
        pipeline = self.pipeline(view, book, ranker, plan)
        r = _Request(
            req, placement, k, rec_id, trace, keep_trace, now, person, ctx, assignment, plan,
            pipeline, book, seq, started, record,
        )  # fmt: skip
        if ranker is None and assignment is None and self.slates.enabled:
            r.shelf = self._shelf(r, view)
        bucket = self.settings.ranking.time_bucket_seconds
        # Kept learned slates are served as recorded decisions: not for unrecorded runs.
        learned = ranker is not None and assignment is None and not req.explain and record
        if learned and bucket > 0 and self.learned_slates.enabled:
            assert ranker is not None
            versions = (len(self.snapshot), pipeline.model_version, pipeline.rules.version)
            seed = zlib.crc32(rec_id.encode())
            r.learned = self.learned_slates.shelved(ctx, k, ranker, bucket, book, versions, seed)
        trace.stages["context"] = (time.perf_counter() - started) * 1e3
        return r

    def _ranker(
        self, view: BundleView | None, assignment: Assignment | None, placement: Placement
    ) -> Ranker | None:
        """The bundle's learned ranker of the placement's training task, unless the
        experiment arm switches it off (the holdout gets the baseline)."""
        if view is None:
            return None
        arm = assignment.arm if assignment is not None else None
        if arm is not None and (arm.holdout or arm.ranker is False):
            return None
        return self.learned.of(view, placement.ranker)

    # -- the slate cache -----------------------------------------------------------

    def _shelf(self, r: _Request, view: BundleView | None) -> Shelf | None:
        """The slate cache's (key, stamp) for a request nothing personal shapes and whose
        slate is deterministic (no exploration slots); None for any other request."""
        if r.placement.exploration > 0:
            return None  # exploration draws per request: its propensities must be true
        history = (
            r.person is not None
            and view is not None
            and view.bundle.artifacts.history.index(r.person) is not None
        )
        if not nothing_personal(r.ctx, history):
            return None
        now = r.ctx.now
        key = (r.placement.name, r.ctx.context_items, r.k, now.month, windows_open(r.book, now))
        stamp = (len(self.snapshot), r.pipeline.model_version, r.pipeline.rules.version)
        return key, stamp

    def _kept(self, r: _Request) -> KeptSlate | None:
        """The kept slate this request is served (recorded as its own), if any."""
        assert r.shelf is not None
        kept = None if r.req.explain else self.slates.get(*r.shelf, self.snapshot.changed_seq)
        if kept is not None and (kept.trace is not None or not r.keep_trace):
            self._child(self.metrics.slate_cache, r.placement.name, "hit").inc()
            self._serve_kept(kept, r)
            return kept
        result = "bypass" if r.req.explain or kept is not None else "miss"
        self._child(self.metrics.slate_cache, r.placement.name, result).inc()
        return None

    def _keep(
        self,
        r: _Request,
        shelf: Shelf,
        slate: Slate,
        answer: dict[str, Any],
        logged: list[dict[str, Any]],
    ) -> None:
        """Keep a computed slate for the requests that will share it."""
        kept = self._kept_slate(r, slate, answer, logged)
        deps = depends_on(slate.candidates, r.ctx.context_items, self._pins(r))
        self.slates.put(*shelf, kept, deps, r.seq)

    def _pins(self, r: _Request) -> IntArray:
        """The rulebook's pinned products (a kept slate is made of them too)."""
        return self.snapshot.indices(r.book.pinned() if r.book is not None else ())

    def _kept_learned(self, r: _Request, shelved: Shelved) -> KeptSlate | None:
        """The kept learned slate of this request's exploration pick, if any."""
        kept = self.learned_slates.served(shelved, self.snapshot)
        if kept is not None and (kept.trace is not None or not r.keep_trace):
            self._child(self.metrics.slate_cache, r.placement.name, "hit").inc()
            self._serve_kept(kept, r)
            return kept
        self._child(self.metrics.slate_cache, r.placement.name, "miss").inc()
        return None

    def _keep_learned(
        self,
        r: _Request,
        shelved: Shelved,
        slate: Slate,
        answer: dict[str, Any],
        logged: list[dict[str, Any]],
    ) -> None:
        kept = self._kept_slate(r, slate, answer, logged)
        objective = self.learned.objective(r.plan.placement)
        self.learned_slates.keep(
            shelved, kept, self.kept_orders, r.plan, objective, self.snapshot,
            slate.candidates, self._pins(r), r.seq, slate.sizes,
        )  # fmt: skip

    def _kept_slate(
        self, r: _Request, slate: Slate, answer: dict[str, Any], logged: list[dict[str, Any]]
    ) -> KeptSlate:
        body = dict(answer)
        del body["rec_id"]
        return KeptSlate(
            computed_by=r.rec_id,
            mode=slate.mode,
            model_version=slate.versions.model,
            rulebook_version=slate.versions.rulebook,
            body=orjson.dumps(body),
            logged=orjson.dumps(logged),
            fallback_used=slate.fallback_used,
            drops=tuple(slate.trace.drops.items()),
            # Kept encoded: the candidate pool is most of an entry's memory as objects.
            trace=kept_trace(r.trace.as_dict()) if r.keep_trace else None,
        )

    def _serve_kept(self, kept: KeptSlate, r: _Request) -> None:
        """A kept slate served as this request's own: its rec_id, its decision-log row."""
        elapsed = self._observe(
            r.placement.name, kept.mode, kept.fallback_used, dict(kept.drops), r.started
        )
        logged_trace = None
        if r.trace.enabled and kept.trace is not None:
            r.trace.stages["slate_cache"] = elapsed * 1e3
            logged_trace = {
                **orjson.loads(kept.trace),
                "stages_ms": r.trace.stages,
                "notes": r.trace.notes,
                "slate_cache": {"computed_by": kept.computed_by},
            }
        self._record(
            r, kept.mode, kept.model_version, kept.rulebook_version, kept.logged, logged_trace
        )

    # -- the decision log and metrics ----------------------------------------------

    def _record(
        self,
        r: _Request,
        mode: str,
        model_version: str | None,
        rulebook_version: str | None,
        logged: list[dict[str, Any]] | bytes,  # bytes: a kept slate's, already encoded
        trace: dict[str, Any] | None,
    ) -> None:
        encoded = logged if isinstance(logged, bytes) else None
        assignment = r.assignment
        self.decisions.record(
            Decision(
                rec_id=r.rec_id,
                served_at=r.now,
                placement=r.placement.name,
                mode=mode,
                request=r.req.model_dump(mode="json", exclude_defaults=True),
                items=[] if isinstance(logged, bytes) else logged,
                person_id=r.person,
                session_id=r.req.session,
                experiment_id=assignment.experiment_id if assignment else None,
                arm=assignment.arm.name if assignment else None,
                model_version=model_version,
                rulebook_version=rulebook_version,
                trace=trace,
            ),
            items_json=encoded,
        )

    def _observe(
        self, placement: str, mode: str, fallback: bool, drops: Mapping[str, int], started: float
    ) -> float:
        """Count a served slate; returns the seconds it took."""
        elapsed = time.perf_counter() - started
        m = self.metrics
        self._latency[placement].observe(elapsed)
        self._child(m.slates, placement, mode).inc()
        if fallback:
            self._child(m.fallback, placement).inc()
        for rule, n in drops.items():
            self._child(m.rule_drops, placement, rule).inc(n)
        return elapsed

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, remembered (the lookup costs more than the count)."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child


_BLEND = BlendRanker()


def stranger(view: BundleView, ranker: Ranker, person: str | None) -> bool:
    """A person neither the bundle's sources nor the ranker's state have a history for."""
    return (
        person is not None
        and view.bundle.artifacts.history.index(person) is None
        and ranker.state.person(person) is None
    )


def _candidates(rec: Recommender, view: BundleView | None, reads: tuple[str, ...] | None) -> Stage:
    """The candidates stage; ``reads``: the learned ranker's sources (None: no ranker)."""
    if view is None:
        return Candidates(rec.baseline_blend, None, degraded=True, memo=rec.memo)
    if reads is not None:
        bucket = rec.settings.ranking.time_bucket_seconds
        kept = rec.kept_orders
        return Candidates(view, view, every_source=True, bucket=bucket, kept=kept, reads=reads)
    return Candidates(view, view, memo=rec.memo)


def _note_stale(trace: Trace, fresh: bool) -> None:
    if not fresh:
        trace.notes.append("catalog store unreachable: serving the in-memory snapshot")


def _run_of(r: _Request) -> Run:
    """The pipeline run of a resolved request (its exploration seeded by its id)."""
    seed = zlib.crc32(r.rec_id.encode())
    return Run(r.ctx, r.plan, r.k, seed, r.req.explain, r.trace, r.seq)


def _context_of(r: _Request) -> Hashable | None:
    """What a request's kept entries are kept under (None: it keeps none): two requests
    of one batch with the same are computed once (``Recommender.recommend_many``)."""
    if r.learned is not None:
        return ("learned", r.learned.key)
    if r.shelf is not None:
        return ("slate", r.shelf[0])
    return None


def arm_plan(placement: Placement, arm: Arm | None) -> Plan:
    """The placement as an experiment arm serves it (None: outside any experiment)."""
    if arm is None:
        return plan_of(placement)
    if arm.holdout:
        plain = placement.model_copy(update={"sources": {"popular": 1.0}, "fallback": ()})
        return Plan(plain, plan_of(plain).chain, plan_of(plain).chain)
    plan = placement
    if arm.sources is not None:
        plan = plan.model_copy(
            update={"sources": {s: placement.sources.get(s, 1.0) for s in arm.sources}}
        )
    if arm.objective is not None:
        plan = plan.model_copy(update={"objective": Objective.model_validate(arm.objective)})
    return plan_of(plan, tuple(arm.sources) if arm.sources is not None else None)
