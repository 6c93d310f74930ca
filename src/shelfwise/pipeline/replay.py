"""Logged slates replayed through the pipeline that served them, under any rulebook.

A decision-log row keeps what a replay needs: the resolved request (person,
viewed items, session events, cart, excluded items: ``trace.context``), the
candidates before any rule (``trace.pool``), the model bundle and ranker that
served it and the seed of its exploration draws (the rec_id). :class:`Replayer`
rebuilds the :class:`~shelfwise.pipeline.flow.Pipeline` of that bundle and
ranker with the given rulebook and runs the logged request through it: the
candidates are the logged ones (the bundle's sources are asked again only for
what the learned ranker reads besides: each source's own proposal, as served),
then the same rules, ranker and arrangement stages as serving.

A slate whose bundle (or learned ranker) can no longer be opened, or whose trace
was not kept, is not replayed: :meth:`Replayer.replay` says why instead.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from shelfwise.bundles import ModelBundle
from shelfwise.candidates.base import Reason, RecContext, SessionEvent
from shelfwise.catalog import CatalogSnapshot
from shelfwise.config import Settings
from shelfwise.errors import ShelfwiseError
from shelfwise.experiments.model import Arm
from shelfwise.pipeline.bundles import BundleView
from shelfwise.pipeline.defaults import BlendRanker
from shelfwise.pipeline.flow import Pipeline
from shelfwise.pipeline.governed import RulebookArrange, RulebookSafety
from shelfwise.pipeline.learned import LearnedRank, LearnedRankers
from shelfwise.pipeline.pool import Pool, Trace
from shelfwise.pipeline.ports import Flow, Plan, Stage, StageName
from shelfwise.pipeline.recommender import arm_plan
from shelfwise.pipeline.slate import Slate
from shelfwise.pipeline.stages import Blender, Candidates, plan_of
from shelfwise.rules import Rulebook
from shelfwise.serving.decisions import Decision
from shelfwise.serving.placements import Placement, Placements

log = logging.getLogger("shelfwise.pipeline")

# Why a logged slate is not replayed (the preview reports each with its count).
NO_TRACE = "its trace was not kept (decision_trace sampling)"
NO_BUNDLE = "the model bundle that served it is no longer available"
NO_RANKER = "the learned ranker that served it can no longer be loaded"
NO_PLACEMENT = "its placement is no longer configured"
NO_ARM = "the experiment arm that served it is no longer defined"

_LOGGED = Reason("replay", "for_you")  # an item no source proposes again: any reason


@dataclass(frozen=True)
class LoggedRequest:
    """A served request as the decision log keeps it, resolved into this snapshot."""

    rec_id: str
    placement: Placement
    ctx: RecContext
    items: np.ndarray[Any, np.dtype[np.int64]]  # the logged candidates, best first
    scores: np.ndarray[Any, np.dtype[np.float64]]
    seed: int
    model_version: str | None
    ranker: str  # "blend" | "learned": the rank stage that served it
    degraded: bool
    served: tuple[str, ...]  # the product ids served, in order
    rulebook_version: str | None
    k: int
    experiment: tuple[str, str] | None = None  # (experiment id, arm) it was served in


@dataclass(frozen=True)
class LoggedCandidates:
    """The candidates stage of a replay: the logged pool, with the reasons and the
    per-source proposals (what the learned ranker reads) asked of the same sources
    again. Computed once per request and shared by every rulebook it is replayed under."""

    inner: Candidates
    request: LoggedRequest
    kept: dict[str, Flow] = field(default_factory=dict)
    name: StageName = "candidates"
    version: str | None = None

    def run(self, flow: Flow) -> Flow:
        done = self.kept.get("flow")
        if done is None:
            done = self.kept["flow"] = self._run(flow)
        return flow._replace(pool=done.pool, proposals=done.proposals, candidates=done.candidates)

    def _run(self, flow: Flow) -> Flow:
        asked = self.inner.run(flow)
        fresh, req = asked.pool, self.request
        where = {int(i): j for j, i in enumerate(fresh.items.tolist())}
        found = [where.get(int(i), -1) for i in req.items.tolist()]
        known = np.array([j >= 0 for j in found], dtype=bool)
        rows = np.array([max(j, 0) for j in found], dtype=np.int64)
        n = len(fresh.reason_table)
        reason_of = np.where(known, fresh.reason_of[rows] if len(fresh) else 0, n)
        hits = np.where(known, fresh.hits[rows] if len(fresh) else 1, 1)
        pool = Pool(
            req.items,
            req.scores,
            hits.astype(np.int64),
            reason_of.astype(np.int64),
            (*fresh.reason_table, _LOGGED),
            fresh.sources,
        )
        return flow._replace(pool=pool, proposals=asked.proposals, candidates=req.items)


def logged_request(
    d: Decision, snapshot: CatalogSnapshot, placements: Placements
) -> LoggedRequest | str:
    """A decision-log row as a request to replay, or why it cannot be one."""
    trace = d.trace or {}
    if not trace.get("pool"):
        return NO_TRACE
    if d.placement not in placements:
        return NO_PLACEMENT
    placement = placements.get(d.placement)
    context = trace.get("context") or {}
    vocab = snapshot.vocab

    def dense(ids: Any) -> tuple[int, ...]:
        return tuple(vocab[p] for p in ids or () if p in vocab)

    items = dense(context.get("items", d.request.get("item", [])))
    cart = dense(context.get("cart", d.request.get("cart", [])))
    exclude = context.get("exclude")
    ctx = RecContext(
        placement=placement.name,
        now=d.served_at if d.served_at.tzinfo else d.served_at.replace(tzinfo=UTC),
        person_id=context.get("person", d.person_id),
        context_items=items,
        cart_items=cart,
        session=tuple(
            SessionEvent(vocab[p], str(t), datetime.fromtimestamp(float(at), UTC))
            for p, t, at in context.get("session", ())
            if p in vocab
        ),
        segment=dict(context.get("segment") or {}),
        exclude=frozenset(dense(exclude)) if exclude is not None else frozenset((*items, *cart)),
    )
    pool = [(vocab[p], float(s)) for p, s in trace["pool"] if p in vocab]
    return LoggedRequest(
        rec_id=d.rec_id,
        placement=placement,
        ctx=ctx,
        items=np.array([i for i, _ in pool], dtype=np.int64),
        scores=np.array([s for _, s in pool], dtype=np.float64),
        # The request's own exploration draw, also when it was served a kept slate
        # another request computed: a kept slate stands for every draw that picks the
        # same items (``pipeline/learned_slates.py``), but under another rulebook the
        # two draws may pick differently, and a request served again takes its own.
        seed=zlib.crc32(d.rec_id.encode()),
        model_version=d.model_version,
        ranker=str((trace.get("ranker") or {}).get("kind", "blend")),
        degraded=d.mode != "model",
        served=tuple(str(i["product_id"]) for i in d.items),
        rulebook_version=d.rulebook_version,
        k=int(d.request.get("k") or placement.k),
        experiment=(d.experiment_id, d.arm) if d.experiment_id and d.arm else None,
    )


class Replayer:
    """Runs logged requests through the pipeline of the bundle and ranker that served
    them, under a given rulebook.

    ``current``: the bundle loaded for serving now (None: degraded mode), and its
    ``learned`` rankers (shared, so the served ranker is not loaded twice);
    ``open_bundle`` opens an older version by name (it raises when it is gone);
    ``arm_of`` finds an experiment's arm by name (None when it is gone)."""

    def __init__(
        self,
        settings: Settings,
        snapshot: CatalogSnapshot,
        placements: Placements,
        baseline: Blender,
        *,
        current: BundleView | None = None,
        learned: LearnedRankers | None = None,
        open_bundle: Callable[[str], ModelBundle] | None = None,
        arm_of: Callable[[str, str], Arm | None] | None = None,
    ) -> None:
        self.settings = settings
        self.snapshot = snapshot
        self.placements = placements
        self.baseline = baseline
        self.current = current
        self.learned = learned or LearnedRankers(settings, snapshot)
        self.open_bundle = open_bundle
        self.arm_of = arm_of
        self._arms: dict[tuple[str, str, str], Plan | None] = {}
        self._views: dict[str, BundleView | None] = {}
        self._others: dict[str, LearnedRankers] = {}

    def view(self, version: str) -> BundleView | None:
        """The bundle ``version`` seen from this snapshot, or None when it is gone."""
        if self.current is not None and self.current.version == version:
            return self.current
        if version not in self._views:
            view = None
            if self.open_bundle is not None:
                try:
                    view = BundleView(self.open_bundle(version), self.snapshot)
                except (OSError, ValueError, ShelfwiseError) as e:
                    log.info("replay: bundle %s not available (%s)", version, e)
            self._views[version] = view
        return self._views[version]

    def stages(self, req: LoggedRequest) -> tuple[Stage, Stage] | str:
        """The candidates and rank stages that served ``req``, or why they are gone."""
        if req.degraded or req.model_version is None:
            inner = Candidates(self.baseline, None, degraded=True)
            return LoggedCandidates(inner, req), BlendRanker()
        view = self.view(req.model_version)
        if view is None:
            return NO_BUNDLE
        if req.ranker != "learned":
            return LoggedCandidates(Candidates(view, view), req), BlendRanker()
        rankers = self.learned if view is self.current else self._rankers(view.version)
        ranker = rankers.of(view, req.placement.ranker)
        if ranker is None:
            return NO_RANKER
        # The time bucket as served: the sources and the ranker's features read the
        # clock at the end of the request's bucket, and the exploration pick is the
        # bucket's (``pipeline/learned.py``).
        bucket = self.settings.ranking.time_bucket_seconds
        floors = rankers.floors(view, req.placement)
        rank = LearnedRank(ranker, rankers.objective(req.placement), bucket=bucket, floors=floors)
        inner = Candidates(view, view, every_source=True, bucket=bucket)
        return LoggedCandidates(inner, req), rank

    def plan(self, req: LoggedRequest) -> Plan | None:
        """The placement as ``req`` was served: its experiment arm's sources and
        objective (the arm as defined now), or the plain placement."""
        if req.experiment is None:
            return plan_of(req.placement)
        key = (req.placement.name, *req.experiment)
        if key not in self._arms:
            arm = self.arm_of(*req.experiment) if self.arm_of is not None else None
            self._arms[key] = arm_plan(req.placement, arm) if arm is not None else None
        return self._arms[key]

    def _rankers(self, version: str) -> LearnedRankers:
        got = self._others.get(version)
        if got is None:
            got = self._others[version] = LearnedRankers(self.settings, self.snapshot)
        return got

    def replay(self, req: LoggedRequest, books: Mapping[str, Rulebook]) -> dict[str, Slate] | str:
        """``req``'s slate under each named rulebook (its candidates asked once)."""
        got = self.stages(req)
        if isinstance(got, str):
            return got
        candidates, rank = got
        plan = self.plan(req)
        if plan is None:
            return NO_ARM
        out: dict[str, Slate] = {}
        for name, book in books.items():
            pipeline = Pipeline(
                self.snapshot,
                candidates,
                RulebookSafety(book),
                rank,
                RulebookArrange(book),
                mode="degraded" if req.degraded else "model",
                model_version=req.model_version,
            )
            k = min(req.k, self.settings.max_k)
            out[name] = pipeline.run(req.ctx, plan, k, seed=req.seed, trace=Trace(enabled=False))
        return out
