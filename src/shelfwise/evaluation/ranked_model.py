"""The full pipeline (sources -> learned ranker) as an evaluation model.

``fit`` sees only the training log, like every other model: the ranker's
own training windows are decision times before the end of that log (see
``ranking.training``), one model per protocol, sharing the source fits.
``recommend`` asks every source and the blend for one person as of the end
of the training log, then ranks the union by P(engagement) (the evaluation
objective: value = 1, so the lists are comparable with the baselines').
Each protocol has its own model, trained on requests shaped like its own:
``all`` on requests that include the person's history, ``new`` on requests
whose candidates and labels exclude what the person interacted with before
the decision time (the protocol's own filter); the source fits of each
decision time are shared. ``chain`` (the blend weights tuned for the
``all`` protocol, when the evaluation tunes) is used for the ``blend``
source in training and in the lists alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from shelfwise.candidates.base import RecContext
from shelfwise.candidates.config import PlacementChain, SourcesConfig
from shelfwise.candidates.log import InteractionLog
from shelfwise.candidates.model import Artifacts, fit_all
from shelfwise.catalog.model import Product
from shelfwise.ranking.candidates import CandidateSet
from shelfwise.ranking.explain import TableNames
from shelfwise.ranking.history import from_interactions
from shelfwise.ranking.model import RankerModel
from shelfwise.ranking.objective import PlacementObjective, RankingSettings
from shelfwise.ranking.ranker import Ranker
from shelfwise.ranking.state import RankingState
from shelfwise.ranking.training import (
    RANKED_SOURCES,
    RankerTrainingConfig,
    Step,
    build_windows,
    fit_ranker,
    item_columns,
    propose_all,
)

IntArray = npt.NDArray[np.int64]
RELEVANCE = PlacementObjective(click=1.0, sla_penalty_per_day=0.0, min_cover_days=0.0)


@dataclass
class OfflineRanked:
    config: SourcesConfig = field(default_factory=SourcesConfig)
    products: Sequence[Product | None] = ()
    training: RankerTrainingConfig = field(default_factory=RankerTrainingConfig)
    name: str = "shelfwise+ranker"
    step: Step | None = None
    chain: PlacementChain | None = None
    models: dict[str, RankerModel] = field(default_factory=dict)
    protocol: str = "all"
    fit_sources: Callable[[InteractionLog], Artifacts] | None = None  # e.g. a backtest's memo
    cutoff: float | None = None  # "now" of the lists (default: just after the last event)

    def set_protocol(self, protocol: str) -> None:
        self.protocol = protocol

    def fit(self, train: InteractionLog) -> None:
        self.train = train
        now = int(self.cutoff) if self.cutoff is not None else int(train.end) + 1
        self.now = datetime.fromtimestamp(now, UTC)
        artifacts = (
            self.fit_sources(train)
            if self.fit_sources is not None
            else fit_all(train, self.products, self.config)
        )
        self.items = item_columns(artifacts, self.products, train.item_prices())
        windows = build_windows(
            train,
            self.products,
            self.items,
            self.config,
            now,
            self.training,
            self.step,
            protocols=(False, True),
            chain=self.chain,
            fit_sources=self.fit_sources,
        )
        self.models = {
            "all": fit_ranker(windows[False], self.training),
            "new": fit_ranker(windows[True], self.training),
        }
        state = RankingState.fit(from_interactions(train), self.items, now)
        names = TableNames(self.items.titles, self.items.category_names)
        self.ranker = Ranker(state, names, RankingSettings(explore_share=0.0), self.models["all"])
        self.propose = propose_all(artifacts, self.training.depth, self.chain)

    def recommend(self, person: int, k: int, exclude: IntArray) -> IntArray:
        ctx = RecContext(
            placement=self.training.placement,
            now=self.now,
            person_id=self.train.people[person],
            exclude=frozenset(exclude.tolist()),
        )
        cands = CandidateSet.from_proposals(self.propose(ctx), RANKED_SOURCES)
        if len(exclude):
            cands = cands.take(np.flatnonzero(~np.isin(cands.items, exclude)))
        if len(cands) == 0:
            return np.zeros(0, dtype=np.int64)
        self.ranker.model = self.models.get(self.protocol, self.models["all"])
        ranked = self.ranker.rank(ctx, cands, self.items, RELEVANCE, k, explain_items=False)
        return ranked.items
