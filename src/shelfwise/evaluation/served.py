"""The served pipeline as an evaluation model: every number about shelfwise is about it.

``ServedModel.fit`` sees only the training log, like every peer: it fits the
candidate sources on it, makes the catalog snapshot of its items (what the
catalog knows of each), compiles the merchant's rulebook against that snapshot
and, with a ranker, trains the learned ranker the way ``shelfwise train
--ranker`` does (decision times before the end of the log, its state as of
the end). ``recommend`` then asks :meth:`Pipeline.offline
<shelfwise.pipeline.flow.Pipeline.offline>` - context, candidates, the
rulebook's safety rules, the rank stage, the rulebook's arrangement - for one
person's slate of the placement as of the end of the log. The protocol's
exclusions are the request's exclude set, as a live request's would be, with the
one-off goods the person owns (``candidates.buyagain``) as a live request's has.

What is measured is the program a store serves: the placement as configured
(its sources, objective and exploration; an evaluation may replace its
blend weights with ones tuned on a validation window, a placement setting a
merchant can copy), the rules in force (time windows judged at the request's
clock) and the same rank stage (the blend ranker without a learned ranker).
:meth:`ServedModel.forbidden` says how many of a person's targets the rules
would never let through: a ceiling the comparison with peers must be read
against.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from shelfwise.candidates.base import RecContext
from shelfwise.candidates.config import PlacementChain, SourcesConfig
from shelfwise.candidates.log import InteractionLog
from shelfwise.candidates.model import Artifacts, fit_all
from shelfwise.candidates.neighbours import NeighbourTable
from shelfwise.catalog import CatalogSnapshot
from shelfwise.catalog.model import Product
from shelfwise.catalog.static import snapshot_of_items
from shelfwise.pipeline.defaults import BlendRanker
from shelfwise.pipeline.exposure import anchor_slates, floors_of
from shelfwise.pipeline.flow import Pipeline
from shelfwise.pipeline.learned import LearnedRank, placement_objective
from shelfwise.pipeline.ports import Stage
from shelfwise.pipeline.slate import Slate
from shelfwise.pipeline.stages import chain_of
from shelfwise.ranking.explain import SnapshotNames
from shelfwise.ranking.exposure import Floors
from shelfwise.ranking.impressions import Impression
from shelfwise.ranking.objective import RankingSettings
from shelfwise.ranking.ranker import Ranker
from shelfwise.ranking.training import (
    RankerChoice,
    RankerTrainingConfig,
    WindowMemo,
    bundle_ranker,
    chosen_rankers,
)
from shelfwise.rules import Rulebook
from shelfwise.rules.model import Rule
from shelfwise.serving.placements import Placement, shipped_placements

IntArray = npt.NDArray[np.int64]


def home_placement() -> Placement:
    """The shipped ``home`` placement: personal, no viewed item (what the protocols ask)."""
    return shipped_placements().get("home")


def with_chain(placement: Placement, chain: PlacementChain) -> Placement:
    """The placement with a chain's blend weights, fallbacks and depth (e.g. tuned ones)."""
    return placement.model_copy(
        update={"sources": dict(chain.blend), "fallback": chain.fallbacks, "depth": chain.depth}
    )


@dataclass
class ServedModel:
    """The served pipeline fitted on a training log (see the module doc).

    ``ranker``: train the learned ranker with this config (None: the blend ranker
    ranks, as for a bundle trained without ``--ranker``). ``choices``: instead, choose on
    the validation window before the cutoff among these ranker configs and the blend
    ranker (``ranking.training.choose_ranker``; the choice is kept in ``choice``). ``chains``: blend
    weights per protocol replacing the placement's (tuned on a validation
    window); ``fit_sources``: a memo of source fits shared with other models;
    ``cutoff``: the lists' "now" (default: just after the last event);
    ``impressions``: logged slates (with their responses before the cutoff) the
    learned ranker learns from, as a bundle's does; ``windows``: a memo of the
    chosen rankers' training windows shared with another training
    (``ranking.training.WindowMemo``); ``jobs``: the worker processes the learned
    ranker's windows and designs are trained in (``ranking.workers``)."""

    config: SourcesConfig = field(default_factory=SourcesConfig)
    products: Sequence[Product | None] = ()
    placement: Placement = field(default_factory=home_placement)
    rules: Sequence[Rule] = ()
    rulebook_version: int = 0
    ranker: RankerTrainingConfig | None = None
    ranking: RankingSettings = field(default_factory=RankingSettings)
    chains: dict[str, PlacementChain] = field(default_factory=dict)
    name: str = "shelfwise"
    fit_sources: Callable[[InteractionLog], Artifacts] | None = None
    content: NeighbourTable | None = None
    cutoff: float | None = None
    step: Callable[[str], None] | None = None
    impressions: Sequence[Impression] = ()
    protocol: str = "all"
    choices: Sequence[RankerTrainingConfig] = ()
    new_items_choices: Sequence[RankerTrainingConfig] = ()
    windows: WindowMemo | None = None
    jobs: int = 1
    choice: RankerChoice | None = field(default=None, init=False)
    new_items_choice: RankerChoice | None = field(default=None, init=False)

    def set_protocol(self, protocol: str) -> None:
        """The evaluation runner says which protocol the next lists are for."""
        self.protocol = protocol

    def fit(self, train: InteractionLog) -> None:
        self.train = train
        now = int(self.cutoff) if self.cutoff is not None else int(train.end) + 1
        self.now = datetime.fromtimestamp(now, UTC)
        self.artifacts: Artifacts = (
            self.fit_sources(train)
            if self.fit_sources is not None
            else fit_all(train, self.products, self.config, content=self.content)
        )
        self.snapshot: CatalogSnapshot = snapshot_of_items(train.items, self.products)
        self.rulebook = Rulebook(self.rules, self.snapshot, version=self.rulebook_version)
        self.learned: Ranker | None = None
        self.learned_new: Ranker | None = None
        if self.choices:
            kinds = {False: self.choices} | (
                {True: self.new_items_choices} if self.new_items_choices else {}
            )
            got = chosen_rankers(
                train,
                self.products,
                self.artifacts,
                self.config,
                self.ranking,
                kinds,
                self.step,
                now=now,
                chain=chain_of(self.plan_for("all")),
                fit_sources=self.fit_sources,
                names=SnapshotNames(self.snapshot),
                new_chain=chain_of(self.plan_for("new")),
                impressions=self.impressions,
                windows=self.windows,
                jobs=self.jobs,
            )
            self.learned, self.choice = got[False]
            self.learned_new, self.new_items_choice = got.get(True, got[False])
        elif self.ranker is not None:
            self.learned = self.learned_new = bundle_ranker(
                train,
                self.products,
                self.artifacts,
                self.config,
                self.ranking,
                self.ranker,
                self.step,
                now=now,
                chain=chain_of(self.plan_for("all")),
                fit_sources=self.fit_sources,
                names=SnapshotNames(self.snapshot),
                new_chain=chain_of(self.plan_for("new")),
                impressions=self.impressions,
                jobs=self.jobs,
            )
        self.blend = self.artifacts.blend()
        # one pipeline per placement: the all-items one and the new-items one (its own
        # ranker when it has new-items choices; the requests ranker otherwise)
        self.pipelines = {
            protocol: Pipeline.offline(
                self.snapshot, self.blend, self.rulebook, self._rank(learned, protocol)
            )
            for protocol, learned in (("all", self.learned), ("new", self.learned_new))
        }
        self.pipeline = self.pipelines["all"]

    def _rank(self, learned: Ranker | None, protocol: str) -> Stage:
        if learned is None:
            return BlendRanker()
        plan = self.plan_for(protocol)
        rank = LearnedRank(learned, placement_objective(self.ranking, plan))
        if protocol != "all" or plan.objective.exposure_cap is None:
            # (the new-items shelf is another placement, with its own cap if any)
            return rank
        return replace(rank, floors=self._floors(rank, plan, plan.objective.exposure_cap))

    def _floors(self, rank: LearnedRank, plan: Placement, cap: float) -> Floors:
        """The placement's exposure floors, calibrated as the training job calibrates a
        bundle's (``training.job.exposure_floors``): over the people the fitted sources
        know, each served ``plan`` by this rank stage at the clocks after ``now``."""
        pipeline = Pipeline.offline(self.snapshot, self.blend, self.rulebook, rank)
        people = self.artifacts.history.people
        slates = anchor_slates(pipeline, rank, plan, plan.k, self.now, people=people)
        got = floors_of(slates, self.snapshot.ids, plan.name, plan.k, cap)
        return got.dense(self.snapshot.ids)

    def plan_for(self, protocol: str) -> Placement:
        """The placement that serves ``protocol``'s lists: ``all`` the configured one;
        ``new`` that placement as a new-items shelf (``Placement.new_items_only``: the
        person's history left out), ranked by the ``new_items`` task's ranker when
        the model chooses one (``new_items_choices``)."""
        placement = self.placement
        if protocol == "new":
            task = "new_items" if self.new_items_choices else placement.ranker
            placement = placement.model_copy(update={"new_items_only": True, "ranker": task})
        chain = self.chains.get(protocol)
        return placement if chain is None else with_chain(placement, chain)

    def context(
        self, person_id: str | None, exclude: IntArray | frozenset[int] = frozenset()
    ) -> RecContext:
        items = exclude.tolist() if isinstance(exclude, np.ndarray) else exclude
        # A live request leaves out the one-off goods the person owns (build_context),
        # and on a new-items placement everything in their history.
        owned = self.blend.owned(person_id).tolist()
        if self.plan_for(self.protocol).new_items_only:
            owned += self.blend.seen(person_id).tolist()
        return RecContext(
            placement=self.placement.name,
            now=self.now,
            person_id=person_id,
            exclude=frozenset((*items, *owned)),
        )

    def slate(
        self, person_id: str | None, k: int, exclude: IntArray | frozenset[int] = frozenset()
    ) -> Slate:
        """The served slate for one person (``explain``ed: reasons and contributions)."""
        ctx = self.context(person_id, exclude)
        plan = self.plan_for(self.protocol)
        return self.pipelines[self.protocol].run(ctx, plan, k, explain=True)

    def recommend(self, person: int, k: int, exclude: IntArray) -> IntArray:
        ctx = self.context(self.train.people[person], exclude)
        slate = self.pipelines[self.protocol].run(ctx, self.plan_for(self.protocol), k)
        return np.fromiter((s.item for s in slate.items), np.int64, len(slate.items))

    def forbidden(self, person: int, items: IntArray) -> int:
        """How many of ``items`` the rules in force remove for this person on this
        placement (the built-in in-stock rule included)."""
        ctx = self.context(self.train.people[person])
        scoped = RecContext(
            placement=self.placement.rule_scope, now=ctx.now, person_id=ctx.person_id
        )
        allowed = self.rulebook.apply_safety(scoped, items, np.ones(len(items)), boost=False)
        return len(items) - len(allowed.items)
