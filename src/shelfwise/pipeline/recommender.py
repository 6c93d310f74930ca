"""The request path wired: one call turns a request into a recorded, explained slate."""

from __future__ import annotations

import itertools
import logging
import os
import time
import zlib
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from sqlalchemy.exc import SQLAlchemyError

from shelfwise.candidates.base import Reason, RecContext, Source
from shelfwise.candidates.blend import CandidateBlend
from shelfwise.candidates.config import PlacementChain, SourcesConfig
from shelfwise.catalog import CatalogSnapshot
from shelfwise.config import Settings
from shelfwise.experiments.assignment import Assignment
from shelfwise.pipeline import governed
from shelfwise.pipeline.bundles import BundleView
from shelfwise.pipeline.defaults import BlendRanker, NoRules, PlainArranger
from shelfwise.pipeline.governed import Governor
from shelfwise.pipeline.kept import depends_on
from shelfwise.pipeline.learned import (
    SOURCE_DEPTH,
    LearnedRankers,
    LearnedSlate,
    rank_pool,
    reasons_of,
    rounded,
    source_proposals,
)
from shelfwise.pipeline.memo import CandidateMemo, impersonal
from shelfwise.pipeline.pool import Pool, Trace
from shelfwise.pipeline.ports import Arranged, ArrangeStage, Assigner, RankStage, SafetyStage
from shelfwise.pipeline.request import RecommendRequest
from shelfwise.pipeline.slates import KeptSlate, SlateCache, nothing_personal, windows_open
from shelfwise.pipeline.stages import (
    Blender,
    availability,
    build_context,
    chain_of,
    gather,
    note_candidates,
)
from shelfwise.rules import Rulebook
from shelfwise.serving.decisions import Decision, DecisionLog
from shelfwise.serving.freshness import ChangeClock, refresh_if_changed
from shelfwise.serving.identity import PersonCache
from shelfwise.serving.metrics import ServingMetrics
from shelfwise.serving.placements import Objective, Placement, Placements
from shelfwise.serving.session import SessionRecord, SessionState
from shelfwise.store.types import utcnow

if TYPE_CHECKING:
    from shelfwise.bundles import ModelBundle

log = logging.getLogger("shelfwise.pipeline")


@dataclass
class Stages:
    safety: SafetyStage = field(default_factory=NoRules)
    ranker: RankStage = field(default_factory=BlendRanker)
    arranger: ArrangeStage = field(default_factory=PlainArranger)
    assigner: Assigner | None = None
    rules: Governor | None = None  # the merchant's rulebook; None = availability only


def degraded(placement: Placement) -> Placement:
    """The placement as served without a model bundle: content and the session's
    views (plus the season on the home page), filled up by popularity."""
    sources = {"content": 1.0, "session": 0.8}
    if placement.page in ("home", "email"):
        sources["seasonal"] = 0.5
    return placement.model_copy(update={"sources": sources, "fallback": ("popular",)})


def reason_text(reason: Reason, snapshot: CatalogSnapshot) -> str:
    anchor = snapshot.products[reason.anchor].title if reason.anchor is not None else "this"
    match reason.kind:
        case "often_bought_with":
            return f"Often bought with {anchor}"
        case "similar_to":
            return f"Similar to {anchor}"
        case "because_you_viewed":
            return f"Because you viewed {anchor}"
        case "popular_in":
            return f"Popular in {reason.label or 'the store'}"
        case "trending_in":
            return f"Trending in {reason.label or 'the store'}"
        case "seasonal":
            return f"In season: {reason.label}" if reason.label else "In season"
        case "pinned":
            return "Featured"
        case "buy_again":
            return "Buy it again"
        case _:
            return "Picked for you"


class RecIds:
    """Slate ids unique across workers without coordination, sortable by time:
    milliseconds, a random tag per process, a counter (29 hex characters)."""

    def __init__(self) -> None:
        self.tag = os.urandom(5).hex()
        self.counter = itertools.count()

    def next(self) -> str:
        ms = time.time_ns() // 1_000_000
        return f"{ms:011x}{self.tag}{next(self.counter) & 0xFFFFFFFF:08x}"


class Recommender:
    def __init__(
        self,
        settings: Settings,
        snapshot: CatalogSnapshot,
        placements: Placements,
        sessions: SessionState,
        decisions: DecisionLog,
        metrics: ServingMetrics,
        baseline: Mapping[str, Source],
        stages: Stages | None = None,
        bundle_of: Callable[[], ModelBundle | None] | None = None,
        clock: ChangeClock | None = None,
        persons: PersonCache | None = None,
    ) -> None:
        self.settings = settings
        self.snapshot = snapshot
        self.placements = placements
        self.sessions = sessions
        self.decisions = decisions
        self.metrics = metrics
        self.baseline = baseline
        self.stages = stages or Stages()
        self.bundle_of = bundle_of or (lambda: None)
        self._view: BundleView | None = None
        self.baseline_blend = CandidateBlend(baseline, SourcesConfig())
        self.clock = clock or ChangeClock(snapshot.repo.db)
        # A request's person/anonymous id -> the person id through the identity graph,
        # by the rule training keys people by (``contracts.identity.person_of``), so
        # trained histories are found (None: ids are taken as given).
        self.persons = persons
        self.rec_ids = RecIds()
        self.memo = CandidateMemo()
        self.slates = SlateCache(settings.slate_cache_size)
        self._children: dict[tuple[object, ...], Any] = {}
        self._plans: dict[tuple[str, ...], tuple[Placement, PlacementChain, PlacementChain]] = {}
        self._latency = {p.name: metrics.latency.labels(p.name) for p in placements}
        self.learned = LearnedRankers(settings, snapshot)

    def assign(
        self, placement: Placement, unit: str | None, now: datetime, trace: Trace
    ) -> Assignment | None:
        """The experiment arm of the person (or, anonymous, the session) on this placement."""
        if self.stages.assigner is None or unit is None:
            return None
        try:
            return self.stages.assigner.assign(placement.name, unit, now)
        except SQLAlchemyError:
            trace.notes.append("experiment store unreachable: no experiment arm")
            return None

    def _plan(
        self, placement: Placement, assignment: Assignment | None
    ) -> tuple[Placement, PlacementChain, PlacementChain]:
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
        if got is not None:
            return got
        plan = placement
        arm = assignment.arm if assignment is not None else None
        if arm is not None and arm.holdout:
            plan = placement.model_copy(update={"sources": {"popular": 1.0}, "fallback": ()})
            got = (plan, chain_of(plan), chain_of(plan))
        else:
            if arm is not None and arm.sources is not None:
                plan = plan.model_copy(
                    update={"sources": {s: placement.sources.get(s, 1.0) for s in arm.sources}}
                )
            if arm is not None and arm.objective is not None:
                plan = plan.model_copy(
                    update={"objective": Objective.model_validate(arm.objective)}
                )
            got = (plan, chain_of(plan), chain_of(degraded(plan)))
        self._plans[key] = got
        return got

    def bundle_view(self) -> BundleView | None:
        """The loaded bundle as seen from this snapshot (re-made after a reload)."""
        bundle = self.bundle_of()
        if bundle is None:
            return None
        view = self._view
        if view is None or view.bundle is not bundle:
            view = self._view = BundleView(bundle, self.snapshot)
        return view.current()

    def bundle_age_seconds(self) -> float:
        view = self.bundle_view()
        return time.time() - view.created_at if view is not None else -1.0

    def resolve_person(self, any_id: str) -> str:
        """The person behind a request's id, as of the identity graph the clock last read."""
        if self.persons is None:
            return any_id
        return self.persons.person(any_id, self.clock.identity_seq)

    def person_of(self, any_id: str | None) -> str | None:
        return None if any_id is None else self.resolve_person(any_id)

    def refresh_catalog(self, trace: Trace) -> None:
        """Pick up stock/price changes; with the store down, keep serving what is in memory."""
        try:
            fresh = refresh_if_changed(self.snapshot, self.clock)
        except SQLAlchemyError:
            fresh = False
        if not fresh:
            trace.notes.append("catalog store unreachable: serving the in-memory snapshot")
        self.metrics.snapshot_age.set(self.snapshot.age_seconds)

    def recommend(
        self,
        req: RecommendRequest,
        now: datetime | None = None,
        *,
        record: bool = True,
        records: Sequence[SessionRecord] | None = None,
    ) -> dict[str, Any]:
        """One slate. ``records`` stand in for the live session (batch slates)."""
        served = self._recommend(req, now, record, records)
        if isinstance(served, dict):
            return served
        kept, rec_id = served
        slate: dict[str, Any] = orjson.loads(kept.answer(rec_id))
        return slate

    def recommend_json(self, req: RecommendRequest, now: datetime | None = None) -> bytes:
        """One slate as the JSON answer of ``/v1/recommendations`` (a kept slate is
        spliced in as it is kept, never decoded)."""
        served = self._recommend(req, now, True, None)
        if isinstance(served, dict):
            return orjson.dumps(served)
        kept, rec_id = served
        return kept.answer(rec_id)

    def _recommend(
        self,
        req: RecommendRequest,
        now: datetime | None,
        record: bool,
        records: Sequence[SessionRecord] | None,
    ) -> dict[str, Any] | tuple[KeptSlate, str]:
        """The slate computed (a dict), or a kept one with this request's rec_id."""
        started = time.perf_counter()
        placement = self.placements.get(req.placement)
        k = min(req.k or placement.k, self.settings.max_k)
        rec_id = self.rec_ids.next()
        keep_trace = req.explain or (record and self.decisions.keeps_trace(rec_id))
        trace = Trace(enabled=keep_trace)
        self.refresh_catalog(trace)
        snapshot = self.snapshot
        seq = snapshot.seq  # what kept entries made now are made of
        if records is None:
            records = self.sessions.read(req.session) if req.session else []
        now = now or utcnow()
        person = self.person_of(req.person)
        ctx = build_context(req, placement, snapshot, records, now, person, trace)
        assignment = self.assign(placement, person or req.session, now, trace)
        plan, model_chain, degraded_chain = self._plan(placement, assignment)
        view = self.bundle_view()
        mode = "model" if view is not None else "degraded"
        t = time.perf_counter()
        trace.stages["context"] = (t - started) * 1e3

        ranker = self.learned.of(view) if view is not None else None
        arm = assignment.arm if assignment is not None else None
        if arm is not None and (arm.holdout or arm.ranker is False):
            ranker = None  # the holdout gets the baseline; an arm may switch the ranker off
        chain = model_chain if view is not None else degraded_chain
        rules = self.stages.rules
        book = rules.book(trace, self.clock.rules_seq) if rules is not None else None
        rulebook_version = str(book.version) if book is not None else self.stages.safety.version
        shelf = None
        if ranker is None and assignment is None and self.slates.enabled:
            shelf = self._shelf(ctx, placement, k, person, view, book, rulebook_version)
        if shelf is not None:
            kept = None if req.explain else self.slates.get(*shelf, snapshot.changed_seq)
            if kept is not None and (kept.trace is not None or not keep_trace):
                self._child(self.metrics.slate_cache, placement.name, "hit").inc()
                self._serve_kept(kept, rec_id, req, placement, now, person, trace, started)
                return kept, rec_id
            result = "bypass" if req.explain or kept is not None else "miss"
            self._child(self.metrics.slate_cache, placement.name, result).inc()
        memo_key = None
        if ranker is None and impersonal(ctx):
            memo_key = (ctx.placement, id(chain), ctx.context_items, ctx.now.month)
        stamp = (len(snapshot), id(view.bundle) if view is not None else None)
        kept_pool = None
        if memo_key is not None:
            kept_pool = self.memo.get(memo_key, stamp, snapshot.changed_seq)
        if kept_pool is not None:
            proposal, pool = kept_pool
            note_candidates(proposal, trace)
            proposals = [proposal]
        else:
            blend: Blender = view if view is not None else self.baseline_blend
            proposal = gather(ctx, blend, chain, placement.max_candidates, trace)
            proposals = [proposal]
            if ranker is not None and view is not None:
                # The ranker reads every source's score and rank, as in training.
                depth = min(SOURCE_DEPTH, placement.max_candidates)
                only = arm.sources if arm is not None else None
                proposals += source_proposals(ctx, view, depth, only)
            pool = Pool.union(proposals, ctx.exclude)
            if memo_key is not None:
                deps = depends_on(pool.items, ctx.context_items)
                self.memo.put(memo_key, stamp, (proposal, pool), deps, seq)
        candidates = pool.items
        trace.keep_pool(pool, snapshot, placement.rule_scope)
        t, trace.stages["candidates"] = _lap(t)
        if book is None:
            pool = availability(ctx, pool, snapshot, trace)
            pool = self.stages.safety.apply(ctx, placement, pool, snapshot, trace)
        else:
            rules_ctx = replace(ctx, placement=placement.rule_scope)
            pool = governed.safety(book, rules_ctx, pool, snapshot, trace)
        t, trace.stages["safety"] = _lap(t)
        learned: LearnedSlate | None = None
        exploration = placement.exploration
        if ranker is not None:
            objective = self.learned.objective(plan)
            ranked, learned = rank_pool(ranker, ctx, pool, proposals, snapshot, objective, k, trace)
            exploration = 0.0  # the ranker explores (and logs propensities) itself
        else:
            ranked = self.stages.ranker.rank(ctx, plan, pool, snapshot)
        t, trace.stages["rank"] = _lap(t)
        seed = zlib.crc32(rec_id.encode())
        if book is None:
            arranging = placement
            if exploration != placement.exploration:
                arranging = placement.model_copy(update={"exploration": exploration})
            arranged = self.stages.arranger.arrange(
                ctx, arranging, pool, ranked, k, snapshot, trace, seed
            )
        else:
            pool, arranged = governed.arrange(
                book, rules_ctx, pool, ranked.value, k, exploration, snapshot, trace, seed
            )
        t, trace.stages["arrange"] = _lap(t)

        items = self._items(
            pool, ranked.value, arranged, req.explain, ranked.contributions, learned
        )
        model_version = view.version if view is not None else None
        slate = self._slate(
            rec_id, placement.name, mode, items, model_version, rulebook_version, assignment
        )
        if learned is not None:
            slate["ranker"] = "learned"
            slate["objective_version"] = learned.ranked.objective_version
        if req.explain:
            slate["trace"] = trace.as_dict()
        elapsed = time.perf_counter() - started
        self._observe(placement.name, mode, bool(trace.fallback_used), trace.drops, elapsed)
        logged = [_logged(i) for i in items]
        if shelf is not None and not req.explain:
            kept_trace = None
            if keep_trace:
                # Kept encoded: the candidate pool is most of an entry's memory as objects.
                kept_trace = orjson.dumps(
                    {
                        part: v
                        for part, v in trace.as_dict().items()
                        if part not in ("notes", "stages_ms")  # this request's own
                    },
                    default=str,  # as the decision log encodes it
                    option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY,
                )
            body = dict(slate)
            del body["rec_id"]
            pins = snapshot.indices(book.pinned()) if book is not None else ()
            self.slates.put(
                *shelf,
                KeptSlate(
                    computed_by=rec_id,
                    mode=mode,
                    model_version=model_version,
                    rulebook_version=rulebook_version,
                    body=orjson.dumps(body),
                    logged=orjson.dumps(logged),
                    fallback_used=bool(trace.fallback_used),
                    drops=tuple(trace.drops.items()),
                    trace=kept_trace,
                ),
                depends_on(candidates, ctx.context_items, pins),
                seq,
            )
        if record:
            self._record(
                rec_id,
                req,
                placement.name,
                mode,
                now,
                person,
                assignment,
                (model_version, rulebook_version),
                logged,
                trace.as_dict() if keep_trace else None,
            )
        return slate

    def _shelf(
        self,
        ctx: RecContext,
        placement: Placement,
        k: int,
        person: str | None,
        view: BundleView | None,
        book: Rulebook | None,
        rulebook_version: str | None,
    ) -> tuple[Hashable, Hashable] | None:
        """The slate cache's (key, stamp) for a request nothing personal shapes and whose
        slate is deterministic (no exploration slots); None for any other request."""
        if placement.exploration > 0:
            return None  # exploration draws per request: its propensities must be true
        history = (
            person is not None
            and view is not None
            and view.bundle.artifacts.history.index(person) is not None
        )
        if not nothing_personal(ctx, history):
            return None
        key = (placement.name, ctx.context_items, k, ctx.now.month, windows_open(book, ctx.now))
        stamp = (len(self.snapshot), view.version if view is not None else None, rulebook_version)
        return key, stamp

    def _serve_kept(
        self,
        kept: KeptSlate,
        rec_id: str,
        req: RecommendRequest,
        placement: Placement,
        now: datetime,
        person: str | None,
        trace: Trace,
        started: float,
    ) -> None:
        """A kept slate served as this request's own: its rec_id, its decision-log row."""
        elapsed = time.perf_counter() - started
        self._observe(placement.name, kept.mode, kept.fallback_used, dict(kept.drops), elapsed)
        logged_trace = None
        if trace.enabled and kept.trace is not None:
            trace.stages["slate_cache"] = elapsed * 1e3
            logged_trace = {
                **orjson.loads(kept.trace),
                "stages_ms": trace.stages,
                "notes": trace.notes,
                "slate_cache": {"computed_by": kept.computed_by},
            }
        self._record(
            rec_id,
            req,
            placement.name,
            kept.mode,
            now,
            person,
            None,
            (kept.model_version, kept.rulebook_version),
            kept.logged,
            logged_trace,
        )

    def _slate(
        self,
        rec_id: str,
        placement: str,
        mode: str,
        items: list[dict[str, Any]],
        model_version: str | None,
        rulebook_version: str | None,
        assignment: Assignment | None,
    ) -> dict[str, Any]:
        return {
            "rec_id": rec_id,
            "placement": placement,
            "mode": mode,
            "ranker": "blend",
            "objective_version": None,
            "items": items,
            "model_version": model_version,
            "rulebook_version": rulebook_version,
            "placements_version": self.placements.version,
            "experiment": (
                {"experiment_id": assignment.experiment_id, "arm": assignment.arm.name}
                if assignment
                else None
            ),
        }

    def _record(
        self,
        rec_id: str,
        req: RecommendRequest,
        placement: str,
        mode: str,
        now: datetime,
        person: str | None,
        assignment: Assignment | None,
        versions: tuple[str | None, str | None],  # the model's and the rulebook's
        logged: list[dict[str, Any]] | bytes,  # bytes: a kept slate's, already encoded
        trace: dict[str, Any] | None,
    ) -> None:
        encoded = logged if isinstance(logged, bytes) else None
        self.decisions.record(
            Decision(
                rec_id=rec_id,
                served_at=now,
                placement=placement,
                mode=mode,
                request=req.model_dump(mode="json", exclude_defaults=True),
                items=[] if isinstance(logged, bytes) else logged,
                person_id=person,
                session_id=req.session,
                experiment_id=assignment.experiment_id if assignment else None,
                arm=assignment.arm.name if assignment else None,
                model_version=versions[0],
                rulebook_version=versions[1],
                trace=trace,
            ),
            items_json=encoded,
        )

    def _items(
        self,
        pool: Pool,
        value: Any,
        arranged: Arranged,
        explain: bool,
        contributions: Mapping[str, Any],
        learned: LearnedSlate | None = None,
    ) -> list[dict[str, Any]]:
        snapshot = self.snapshot
        out = []
        for pos, (j, explored, propensity) in enumerate(
            zip(
                arranged.order.tolist(),
                arranged.explored.tolist(),
                arranged.propensity.tolist(),
                strict=True,
            ),
            start=1,
        ):
            i = int(pool.items[j])
            p = snapshot.products[i]
            reason = pool.reason(j)
            item: dict[str, Any] = {
                "product_id": p.product_id,
                "position": pos,
                "title": p.title,
                "price": p.price,
                "currency": p.currency,
                "availability": p.availability,
                "image_url": p.image_url,
                "brand": p.brand,
                "category": p.category_path,
                "score": round(float(value[j]), 6) if j < len(value) else 0.0,
                "reasons": [
                    {
                        "kind": reason.kind,
                        "source": reason.source,
                        "text": reason_text(reason, snapshot),
                        "anchor": snapshot.ids[reason.anchor]
                        if reason.anchor is not None
                        else None,
                        "label": reason.label,
                        "fallback": reason.fallback,
                    }
                ],
                "explored": explored,
                "propensity": propensity,
            }
            if explain:
                item["contributions"] = {
                    k: round(float(v[j]), 6) if j < len(v) else 0.0
                    for k, v in contributions.items()
                }
            slot = learned.slot_of(j) if learned is not None else None
            if learned is not None:
                # The ranker's head carries its score, reasons, exploration and
                # contributions; items arranged in from below the head keep the
                # source's reason and no learned score.
                ranked = learned.ranked
                item["score"] = round(float(ranked.scores[slot]), 6) if slot is not None else 0.0
                if slot is not None:
                    item["reasons"] = reasons_of(ranked, slot, snapshot) or item["reasons"]
                    item["explored"] = bool(ranked.explored[slot]) or explored
                    item["propensity"] = float(ranked.propensities[slot]) * propensity
                if explain:
                    item["contributions"] = (
                        rounded(ranked.contributions[slot])
                        if slot is not None and slot < len(ranked.contributions)
                        else {}
                    )
            out.append(item)
        return out

    def _observe(
        self, placement: str, mode: str, fallback: bool, drops: Mapping[str, int], elapsed: float
    ) -> None:
        m = self.metrics
        self._latency[placement].observe(elapsed)
        self._child(m.slates, placement, mode).inc()
        if fallback:
            self._child(m.fallback, placement).inc()
        for rule, n in drops.items():
            self._child(m.rule_drops, placement, rule).inc(n)

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, remembered (the lookup costs more than the count)."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child


def _lap(t: float) -> tuple[float, float]:
    now = time.perf_counter()
    return now, (now - t) * 1e3


def _logged(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "product_id": item["product_id"],
        "position": item["position"],
        "score": item["score"],
        "price": item["price"],
        "explored": item["explored"],
        "propensity": item["propensity"],
        "reasons": item["reasons"],
    }
