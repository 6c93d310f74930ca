"""Fitting every source on an interaction log, and the fitted artifacts that serve them.

:class:`Artifacts` is what a model bundle holds: plain numpy arrays indexed by
the dense item index of ``items`` (the catalog's vocabulary at training time)
and the person index of ``people``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from shelfwise.candidates.base import Source
from shelfwise.candidates.basket_ease import BasketEaseSource, fit_basket_ease
from shelfwise.candidates.blend import CandidateBlend
from shelfwise.candidates.buyagain import BuyAgainSource, fit_cycles, fit_repeat
from shelfwise.candidates.complements import (
    ComplementsSource,
    fit_category_lift,
    fit_copurchase,
)
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
from shelfwise.candidates.session_knn import SessionIndex, SessionKNNSource, fit_sessions
from shelfwise.candidates.substitutes import SubstitutesSource
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
    repeat: npt.NDArray[np.float64]  # each item's repeat rate (buyagain.fit_repeat)
    popularity: Popularity
    category: npt.NDArray[np.int32]
    category_names: tuple[str, ...]
    price: npt.NDArray[np.float64]  # per item at training time, NaN when unknown
    copurchase: NeighbourTable
    category_lift: npt.NDArray[np.float32]  # (categories, categories)
    sessions: SessionIndex
    basket_ease: NeighbourTable
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
            "buy_again": BuyAgainSource(self.history, self.cycles, self.repeat, c.buy_again),
            "popular": PopularSource(self.popularity, self.category, self.category_names),
            "substitutes": SubstitutesSource(
                self.content,
                self.cooccurrence,
                self.category,
                self.category_names,
                self.price,
                c.substitutes,
            ),
            "complements": ComplementsSource(
                self.copurchase,
                self.category_lift,
                self.category,
                self.category_names,
                self.price,
                np.asarray(self.popularity.scores, dtype=np.float64),
                c.complements,
                self.cooccurrence,
            ),
            "session_knn": SessionKNNSource(self.sessions, c.session_knn),
            "basket_ease": BasketEaseSource(self.basket_ease),
        }

    def aligned(self, ids: Sequence[str]) -> Artifacts:
        """The same artifacts indexed by another item vocabulary (the live catalog's).

        The catalog's dense indices may differ from the training-time ones
        after a reload; items the new vocabulary lacks are dropped, new items
        get empty rows (content and popularity catch up at the next training).
        """
        if tuple(ids) == self.items:
            return self
        index = {p: i for i, p in enumerate(ids)}
        to_new = np.array([index.get(p, -1) for p in self.items], dtype=np.int64)
        keep = to_new >= 0
        n = len(ids)

        def per_item(arr: npt.NDArray[Any], fill: float) -> npt.NDArray[Any]:
            out = np.full((n, *arr.shape[1:]), fill, dtype=arr.dtype)
            out[to_new[keep]] = np.asarray(arr)[keep]
            return out

        h = self.history
        rows = np.repeat(np.arange(len(h.people)), np.diff(h.indptr))
        mapped = to_new[h.items]
        kept = mapped >= 0
        counts = np.bincount(rows[kept], minlength=len(h.people))
        history = PersonHistory(
            people=h.people,
            indptr=np.r_[0, np.cumsum(counts)].astype(np.int64),
            items=mapped[kept],
            strength=np.asarray(h.strength)[kept],
            last_at=np.asarray(h.last_at)[kept],
            bought=np.asarray(h.bought)[kept],
        )
        return replace(
            self,
            items=tuple(ids),
            history=history,
            cooccurrence=self.cooccurrence.remap(to_new, n),
            regression=self.regression.remap(to_new, n),
            content=self.content.remap(to_new, n),
            factors=Factors(np.asarray(self.factors.people), per_item(self.factors.items, 0.0)),
            cycles=per_item(
                self.cycles, float(np.median(self.cycles)) if len(self.cycles) else 0.0
            ),
            repeat=per_item(self.repeat, 0.0),  # a new item was never bought: nobody re-buys it
            popularity=Popularity(
                per_item(self.popularity.scores, 0.0), per_item(self.popularity.label, 0)
            ),
            category=per_item(self.category, 0),
            price=per_item(self.price, np.nan),
            copurchase=self.copurchase.remap(to_new, n),
            sessions=self.sessions.remap(to_new, n),
            basket_ease=self.basket_ease.remap(to_new, n),
        )

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


def catalog_prices(
    log: InteractionLog, products: Sequence[Product | None]
) -> npt.NDArray[np.float64]:
    """The catalog price of each item, else the median price paid in the log."""
    prices = log.item_prices()
    for i, p in enumerate(products[: len(prices)]):
        if p is not None and p.price is not None:
            prices[i] = p.price
    return prices


def fit_all(
    log: InteractionLog,
    products: Sequence[Product | None],
    config: SourcesConfig,
    step: Step | None = None,
    content: NeighbourTable | None = None,
) -> Artifacts:
    """Fit every source; ``products[i]`` describes ``log.items[i]`` (None when unknown).

    ``step(name)`` is called before each stage (progress bars); the seconds each
    stage took are in ``Artifacts.timings``. A ``content`` table fitted before on
    the same catalog is reused (it does not depend on events).
    """
    timings: dict[str, float] = {}
    products = list(products) + [None] * (log.n_items - len(products))
    prices = catalog_prices(log, products)
    results: dict[str, object] = {}
    kinds = config.events
    stages: list[tuple[str, Callable[[], object]]] = [
        ("history", lambda: PersonHistory.fit(log, kinds.array(), config.history_half_life_days)),
        ("cooccurrence", lambda: fit_cooccurrence(log, config.cooccurrence, kinds)),
        ("regression", lambda: fit_regression(log, config.regression, kinds)),
        (
            "factors",
            lambda: fit_factors(
                log, config.factors, kinds, config.history_half_life_days, config.threads
            ),
        ),
        ("content", lambda: content or fit_content(products, prices, config.content)),
        ("buy_again", lambda: fit_cycles(log)),
        ("popular", lambda: fit_popularity(log, config.popular, kinds)),
        ("complements", lambda: fit_copurchase(log, config.complements)),
        ("session_knn", lambda: fit_sessions(log, config.session_knn)),
        ("basket_ease", lambda: fit_basket_ease(log, config.basket_ease)),
    ]
    with threadpool_limits(config.threads or None, "blas"):  # 0: every core
        for name, fit in stages:
            if step is not None:
                step(name)
            started = time.perf_counter()
            results[name] = fit()
            timings[name] = round(time.perf_counter() - started, 4)
    category, names = categories(products)
    started = time.perf_counter()
    category_lift = fit_category_lift(log, category, len(names))
    timings["complements"] += round(time.perf_counter() - started, 4)
    started = time.perf_counter()
    repeat = fit_repeat(log, category, config.buy_again.repeat_prior)
    timings["buy_again"] += round(time.perf_counter() - started, 4)
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
        repeat=repeat,
        popularity=results["popular"],  # type: ignore[arg-type]
        category=category,
        category_names=names,
        price=prices,
        copurchase=results["complements"],  # type: ignore[arg-type]
        category_lift=category_lift,
        sessions=results["session_knn"],  # type: ignore[arg-type]
        basket_ease=results["basket_ease"],  # type: ignore[arg-type]
        timings=timings,
    )


STAGES = (
    "history",
    "cooccurrence",
    "regression",
    "factors",
    "content",
    "buy_again",
    "popular",
    "complements",
    "session_knn",
    "basket_ease",
)


class SourceFits:
    """Source fits on prefixes of one log, memoised: a backtest's origins and the
    ranker's training windows (of every task a bundle trains) share them.

    A prefix ``log.before(t)`` is identified by its length (and last event), so
    two cutoffs with no event between them share one fit. The content table
    depends on events only through the prices of items the catalog does not
    price (``catalog_prices``: the median paid in the prefix): a table given as
    ``content`` is reused for every prefix (the training job's, fitted on the
    whole log); otherwise a table is reused for a prefix with the same prices,
    so that every fit is what ``fit_all`` makes of its prefix alone, whichever
    prefix came first (a backtest's figures do not depend on how its origins are
    shared among processes). ``keep`` fits are held; the shortest prefix goes
    first.
    """

    def __init__(
        self,
        products: Sequence[Product | None],
        config: SourcesConfig,
        keep: int = 16,
        content: NeighbourTable | None = None,
    ) -> None:
        self.products, self.config, self.keep = products, config, keep
        self.content, self.given = content, content is not None
        self.content_prices: npt.NDArray[np.float64] | None = None
        self.memo: dict[tuple[int, float], Artifacts] = {}
        self.hits = self.misses = 0

    def __call__(self, train: InteractionLog) -> Artifacts:
        got = self.memo.get(self._key(train))
        if got is not None:
            self.hits += 1
            return got
        self.misses += 1
        got = fit_all(train, self.products, self.config, content=self._content_for(train))
        self.content = got.content
        self.keep_fit(train, got)
        return got

    @staticmethod
    def _key(train: InteractionLog) -> tuple[int, float]:
        return (len(train), train.end if len(train) else 0.0)

    def holds(self, train: InteractionLog) -> bool:
        """Whether the sources of ``train`` are fitted already."""
        return self._key(train) in self.memo

    def keep_fit(self, train: InteractionLog, fitted: Artifacts) -> None:
        """Keep ``fitted``, the sources of ``train`` as ``fit_all`` fits them (another
        process's fit, ``ranking.workers``)."""
        if len(self.memo) >= self.keep:
            self.memo.pop(min(self.memo))  # the shortest prefix: origins walk forward
        self.memo[self._key(train)] = fitted

    def _content_for(self, train: InteractionLog) -> NeighbourTable | None:
        """The content table to reuse for ``train`` (None: fit it)."""
        if self.given:
            return self.content
        padded = [*self.products, *[None] * (train.n_items - len(self.products))]
        prices = catalog_prices(train, padded)
        same = self.content_prices is not None and np.array_equal(
            self.content_prices, prices, equal_nan=True
        )
        self.content_prices = prices
        return self.content if same else None
