"""shelfwise's candidate blend wrapped as an evaluation model (and the notebook API).

``OfflineShelfwise.fit`` fits every source on the training log; ``recommend``
asks the placement blend for one person "as of" the cutoff, with the
protocol's exclusions in the request's exclude set like a live request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from shelfwise.candidates.base import Proposal, RecContext
from shelfwise.candidates.config import PlacementChain, SourcesConfig
from shelfwise.candidates.log import InteractionLog
from shelfwise.candidates.model import Artifacts, fit_all
from shelfwise.candidates.neighbours import NeighbourTable
from shelfwise.catalog.model import Product

IntArray = npt.NDArray[np.int64]


@dataclass
class OfflineShelfwise:
    config: SourcesConfig = field(default_factory=SourcesConfig)
    products: Sequence[Product | None] = ()
    placement: str = "home"
    chain: PlacementChain | None = None
    name: str = "shelfwise"
    chains: dict[str, PlacementChain] = field(default_factory=dict)  # per protocol
    content: NeighbourTable | None = None  # reuse a content table fitted on the same catalog
    fit_sources: Callable[[InteractionLog], Artifacts] | None = None  # e.g. a backtest's memo

    def set_protocol(self, protocol: str) -> None:
        """The evaluation runner says which protocol the next lists are for."""
        self.chain = self.chains.get(protocol, self.chain)

    def fit(self, train: InteractionLog) -> None:
        self.train = train
        self.artifacts: Artifacts = (
            self.fit_sources(train)
            if self.fit_sources is not None
            else fit_all(train, self.products, self.config, content=self.content)
        )
        self.blend = self.artifacts.blend()
        self.now = datetime.fromtimestamp(train.end, UTC)

    def context(self, person: int, exclude: IntArray) -> RecContext:
        return RecContext(
            placement=self.placement,
            now=self.now,
            person_id=self.train.people[person],
            exclude=frozenset(exclude.tolist()),
        )

    def propose(self, person: int, k: int, exclude: IntArray) -> Proposal:
        return self.blend.propose(self.context(person, exclude), k, self.chain)

    def recommend(self, person: int, k: int, exclude: IntArray) -> IntArray:
        return self.propose(person, k, exclude).items


@dataclass(frozen=True)
class Recommendation:
    product_id: str
    score: float
    source: str
    reason: str
    anchor: str | None
    fallback: bool


class Notebook:
    """Fit on a log up to a cutoff, then ask for one person's top-k at a time.

    >>> nb = Notebook.fit(log, cutoff=datetime(2011, 11, 25, tzinfo=UTC))  # doctest: +SKIP
    >>> nb.recommend("12347", k=10, new_only=True)  # doctest: +SKIP
    """

    def __init__(self, model: OfflineShelfwise) -> None:
        self.model = model
        self._people = {p: i for i, p in enumerate(model.train.people)}

    @classmethod
    def fit(
        cls,
        log: InteractionLog,
        cutoff: datetime,
        config: SourcesConfig | None = None,
        products: Sequence[Product | None] = (),
        placement: str = "home",
    ) -> Notebook:
        model = OfflineShelfwise(config or SourcesConfig(), products, placement)
        model.fit(log.before(cutoff.timestamp()))
        return cls(model)

    def history(self, person_id: str) -> list[str]:
        h = self.model.artifacts.history
        p = h.index(person_id)
        return [] if p is None else [self.model.train.items[i] for i in h.items[h.row(p)]]

    def recommend(
        self, person_id: str, k: int = 10, new_only: bool = False
    ) -> list[Recommendation]:
        items = self.model.train.items
        p = self._people.get(person_id)
        exclude = np.zeros(0, np.int64)
        if new_only and p is not None:
            h = self.model.artifacts.history
            exclude = np.asarray(h.items[h.row(p)], dtype=np.int64)
        ctx = RecContext(
            placement=self.model.placement,
            now=self.model.now,
            person_id=person_id,
            exclude=frozenset(exclude.tolist()),
        )
        got = self.model.blend.propose(ctx, k, self.model.chain)
        return [
            Recommendation(
                product_id=items[i],
                score=float(s),
                source=r.source,
                reason=r.kind,
                anchor=items[r.anchor] if r.anchor is not None else None,
                fallback=r.fallback,
            )
            for i, s, r in zip(got.items.tolist(), got.scores.tolist(), got.reasons, strict=True)
        ]
