"""Peers tuned like shelfwise: each family's hyper-parameters chosen on the validation window.

A peer with fixed hyper-parameters is a straw man: shelfwise's own blend is
tuned before every cutoff, so each peer family gets a small grid searched on
the same validation split (fit on its training part, NDCG@K on its test
part), one choice per protocol. Past-then-popular and the popularity
baselines have nothing to tune and run as they are. The grids are small on
purpose: a backtest fits every point of them at every origin.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shelfwise.candidates.log import InteractionLog
from shelfwise.evaluation.baselines import (
    EASE,
    GlobalPopularity,
    ImplicitALS,
    IntArray,
    ItemKNN,
    PastThenPopular,
    RecentPopularity,
    Recommender,
)
from shelfwise.evaluation.metrics import per_person
from shelfwise.evaluation.run import lists_for
from shelfwise.evaluation.split import PROTOCOLS, Split

Params = Mapping[str, float]


@dataclass(frozen=True)
class Family:
    """A peer and its grid of hyper-parameters (keyword arguments of ``make``)."""

    name: str
    make: Callable[..., Recommender]
    grid: tuple[Params, ...]


FAMILIES: tuple[Family, ...] = (
    Family(
        "item_knn",
        ItemKNN,
        tuple({"neighbours": n} for n in (20, 100, 400)),
    ),
    Family(
        "implicit_als",
        ImplicitALS,
        tuple({"factors": f, "regularization": r} for f in (32, 64, 128) for r in (0.01, 0.1)),
    ),
    Family(
        "ease",
        EASE,
        tuple({"regularization": r} for r in (100.0, 500.0, 2000.0)),
    ),
)
FIXED: tuple[Callable[[], Recommender], ...] = (
    GlobalPopularity,
    RecentPopularity,
    PastThenPopular,
)


@dataclass
class TunedPeer:
    """One family with the parameters chosen per protocol, fitted once per distinct choice."""

    name: str
    make: Callable[..., Recommender]
    chosen: dict[str, Params]  # protocol -> parameters
    validation_ndcg: dict[str, float] = field(default_factory=dict)
    protocol: str = "all"

    def __post_init__(self) -> None:
        self.fitted: dict[str, Recommender] = {}

    def set_protocol(self, protocol: str) -> None:
        self.protocol = protocol

    def fit(self, train: InteractionLog) -> None:
        by_params: dict[tuple[tuple[str, float], ...], Recommender] = {}
        for protocol, params in self.chosen.items():
            key = tuple(sorted(params.items()))
            if key not in by_params:
                model = self.make(**params)
                model.fit(train)
                by_params[key] = model
            self.fitted[protocol] = by_params[key]

    def recommend(self, person: int, k: int, exclude: IntArray) -> IntArray:
        return self.fitted[self.protocol].recommend(person, k, exclude)

    def recommend_many(
        self, people: Sequence[int], k: int, excludes: Sequence[IntArray]
    ) -> list[IntArray]:
        model = self.fitted[self.protocol]
        many = getattr(model, "recommend_many", None)
        if many is not None:
            lists: list[IntArray] = many(people, k, excludes)
            return lists
        return [model.recommend(p, k, e) for p, e in zip(people, excludes, strict=True)]

    def describe(self) -> dict[str, Any]:
        return {
            p: {"params": dict(self.chosen[p]), "validation_ndcg": self.validation_ndcg[p]}
            for p in self.chosen
        }


def validation_ndcg(model: Recommender, split: Split, k: int) -> dict[str, float]:
    """Mean NDCG@k of a fitted model on each protocol's targets of ``split``."""
    out: dict[str, float] = {}
    for protocol in PROTOCOLS:
        targets = split.targets[protocol]
        lists = lists_for(model, targets, protocol, k)
        out[protocol] = float(np.mean(per_person(lists, targets, k)["ndcg"])) if targets else 0.0
    return out


def tune_peers(
    validation: Split,
    k: int = 10,
    families: Sequence[Family] = FAMILIES,
    step: Callable[[str], None] | None = None,
) -> list[TunedPeer]:
    """Every family's best grid point per protocol on ``validation`` (ties: the first)."""
    tuned = []
    for family in families:
        best: dict[str, tuple[float, Params]] = {}
        for params in family.grid:
            if step is not None:
                step(f"tune {family.name} {dict(params)}")
            model = family.make(**params)
            model.fit(validation.train)
            for protocol, score in validation_ndcg(model, validation, k).items():
                if protocol not in best or score > best[protocol][0] + 1e-12:
                    best[protocol] = (score, params)
        tuned.append(
            TunedPeer(
                family.name,
                family.make,
                {p: params for p, (_, params) in best.items()},
                {p: score for p, (score, _) in best.items()},
            )
        )
    return tuned


def fixed_peers() -> list[Recommender]:
    return [make() for make in FIXED]


__all__ = ["FAMILIES", "Family", "TunedPeer", "fixed_peers", "tune_peers", "validation_ndcg"]
