"""Fitting every source on an interaction log, and the fitted artifacts that serve them.

:class:`Artifacts` is what a model bundle holds: plain numpy arrays indexed by
the dense item index of ``items`` (the catalog's vocabulary at training time)
and the person index of ``people``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from shelfwise.candidates.base import Source
from shelfwise.candidates.blend import CandidateBlend
from shelfwise.candidates.buyagain import BuyAgainSource, fit_cycles
from shelfwise.candidates.config import SourcesConfig
from shelfwise.candidates.content import ContentSource, fit_content
from shelfwise.candidates.cooccurrence import CooccurrenceSource, fit_cooccurrence
from shelfwise.candidates.factors import Factors, FactorsSource, fit_factors
from shelfwise.candidates.history import PersonHistory
from shelfwise.candidates.log import InteractionLog
from shelfwise.candidates.neighbours import NeighbourTable
from shelfwise.candidates.popular import Popularity, PopularSource, fit_popularity
from shelfwise.candidates.regression import fit_regression
from shelfwise.candidates.session import SessionSource
from shelfwise.catalog.model import Product

Step = Callable[[str], None]


@dataclass(frozen=True)
class Artifacts:
    config: SourcesConfig
    items: tuple[str, ...]
    people: tuple[str, ...]
    history: PersonHistory
    cooccurrence: NeighbourTable
    regression: NeighbourTable
    content: NeighbourTable
    factors: Factors
    cycles: npt.NDArray[np.float64]
    popularity: Popularity
    category: npt.NDArray[np.int32]
    category_names: tuple[str, ...]
    timings: dict[str, float] = field(default_factory=dict)

    def sources(self) -> dict[str, Source]:
        c = self.config
        return {
            "cooccurrence": CooccurrenceSource(
                self.cooccurrence, self.history, c.cooccurrence, c.history_half_life_days
            ),
            "regression": CooccurrenceSource(
                self.regression,
                self.history,
                c.cooccurrence,
                c.history_half_life_days,
                name="regression",
            ),
            "factors": FactorsSource(self.factors, self.history),
            "content": ContentSource(
                self.content, self.history, history_half_life_days=c.history_half_life_days
            ),
            "session": SessionSource(self.cooccurrence, c.session, c.events),
            "buy_again": BuyAgainSource(self.history, self.cycles, c.buy_again),
            "popular": PopularSource(self.popularity, self.category, self.category_names),
        }

    def blend(self, config: SourcesConfig | None = None) -> CandidateBlend:
        """The per-placement blend; ``config`` may change only the placement chains."""
        return CandidateBlend(self.sources(), config or self.config)


def categories(products: Sequence[Product | None]) -> tuple[npt.NDArray[np.int32], tuple[str, ...]]:
    names: dict[str, int] = {"": 0}
    codes = np.zeros(len(products), dtype=np.int32)
    for i, p in enumerate(products):
        if p is not None and p.category_path:
            codes[i] = names.setdefault(p.category_path, len(names))
    return codes, tuple(names)


def fit_all(
    log: InteractionLog,
    products: Sequence[Product | None],
    config: SourcesConfig,
    step: Step | None = None,
) -> Artifacts:
    """Fit every source; ``products[i]`` describes ``log.items[i]`` (None when unknown).

    ``step(name)`` is called before each stage (progress bars); the seconds each
    stage took are in ``Artifacts.timings``.
    """
    timings: dict[str, float] = {}
    products = list(products) + [None] * (log.n_items - len(products))
    prices = log.item_prices()
    for i, p in enumerate(products):
        if p is not None and p.price is not None:
            prices[i] = p.price
    results: dict[str, object] = {}
    kinds = config.events
    stages: list[tuple[str, Callable[[], object]]] = [
        ("history", lambda: PersonHistory.fit(log, kinds.array(), config.history_half_life_days)),
        ("cooccurrence", lambda: fit_cooccurrence(log, config.cooccurrence, kinds)),
        ("regression", lambda: fit_regression(log, config.regression, kinds)),
        ("factors", lambda: fit_factors(log, config.factors, kinds, config.history_half_life_days)),
        ("content", lambda: fit_content(products, prices, config.content)),
        ("buy_again", lambda: fit_cycles(log)),
        ("popular", lambda: fit_popularity(log, config.popular, kinds)),
    ]
    for name, fit in stages:
        if step is not None:
            step(name)
        started = time.perf_counter()
        results[name] = fit()
        timings[name] = round(time.perf_counter() - started, 4)
    category, names = categories(products)
    return Artifacts(
        config=config,
        items=log.items,
        people=log.people,
        history=results["history"],  # type: ignore[arg-type]
        cooccurrence=results["cooccurrence"],  # type: ignore[arg-type]
        regression=results["regression"],  # type: ignore[arg-type]
        content=results["content"],  # type: ignore[arg-type]
        factors=results["factors"],  # type: ignore[arg-type]
        cycles=results["buy_again"],  # type: ignore[arg-type]
        popularity=results["popular"],  # type: ignore[arg-type]
        category=category,
        category_names=names,
        timings=timings,
    )


STAGES = ("history", "cooccurrence", "regression", "factors", "content", "buy_again", "popular")
