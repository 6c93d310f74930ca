"""shelfwise's side of basket completion: what its cart placement chooses on validation.

Everything goes through the served pipeline (``evaluation.served_slates``), with
cart requests that name the shopper as a signed-in storefront's do. On the
validation window, in order:

1. the ``basket_ease`` source's regularisation (``REGULARIZATIONS``);
2. the weight of the ``buy_again`` source (the shopper's own re-orders) in the
   placement's chain (``BUY_AGAIN_WEIGHTS``);
3. when the placement is ranked by the cart task's ranker (``ranker: cart`` in
   placements.yaml), that ranker trained on the orders before the window as the
   training job trains it (``ranking.training.task_training``), against the blend
   ranker: the better of the two serves the test window.

The test window is then served with those choices, the sources (and the ranker)
refitted on everything before it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from shelfwise.candidates.basket_ease import fit_basket_ease
from shelfwise.candidates.log import InteractionLog
from shelfwise.candidates.model import Artifacts, fit_all
from shelfwise.candidates.neighbours import NeighbourTable
from shelfwise.catalog import CatalogSnapshot
from shelfwise.errors import InvalidInput
from shelfwise.evaluation.protocol_report import Spec
from shelfwise.evaluation.served_slates import ServedSlates, served_slates
from shelfwise.pipeline.learned import LearnedRank, placement_objective
from shelfwise.ranking.objective import RankingSettings
from shelfwise.ranking.training import bundle_ranker, task_training
from shelfwise.serving.placements import Placement

REGULARIZATIONS = (10.0, 30.0, 100.0)  # the basket_ease source's λ
BUY_AGAIN_WEIGHTS = (0.2, 1.0, 2.0, 4.0, 8.0)  # the buy_again source's weight in the chain
Score = Callable[[ServedSlates], float]  # a served pipeline's NDCG@k on the validation baskets


@dataclass
class CartChoice:
    """What the validation window chose, what it scored, and what the cart ranker cost."""

    regularization: float
    buy_again: float
    learned: bool = False
    tried: list[str] = field(default_factory=list)
    validation: float = 0.0  # the chosen pipeline's NDCG@k
    ranker_seconds: list[float] = field(default_factory=list)  # each training of the ranker

    def as_dict(self) -> dict[str, object]:
        return {
            "basket_ease_regularization": self.regularization,
            "buy_again_weight": self.buy_again,
            "ranker": "cart task" if self.learned else "blend",
        }


def weighted(
    placements: Sequence[Placement], name: str, source: str, weight: float
) -> list[Placement]:
    """``placements`` with ``source`` at ``weight`` in placement ``name``'s chain."""
    return [
        p.model_copy(update={"sources": {**p.sources, source: weight}}) if p.name == name else p
        for p in placements
    ]


def cart_ranker(
    log: InteractionLog,
    artifacts: Artifacts,
    spec: Spec,
    placement: Placement,
    ranking: RankingSettings,
) -> LearnedRank:
    """The cart task's ranker trained on ``log`` as the training job trains it for a
    bundle, as the rank stage the store would serve the placement with."""
    cfg, chain = task_training("cart", placement.name, placement.sources, placement.fallback)
    ranker = bundle_ranker(log, spec.products, artifacts, spec.config, ranking, cfg, chain=chain)
    return LearnedRank(ranker, placement_objective(ranking, placement))


def choose(
    train: InteractionLog,
    snapshot: CatalogSnapshot,
    placements: Sequence[Placement],
    spec: Spec,
    name: str,
    score: Score,
    ranking: RankingSettings,
) -> tuple[CartChoice, NeighbourTable]:
    """The validation choices (module doc), sources fitted on ``train``; with the
    content table (it depends on the catalog only: the test fit reuses it)."""
    fitted = fit_all(train, spec.products, spec.config)
    best: tuple[float, float] | None = None
    tried: list[str] = []
    for lam in REGULARIZATIONS:
        spec.say(f"validation: shelfwise {name}, basket_ease λ {lam:g}")
        ease = spec.config.basket_ease.model_copy(update={"regularization": lam})
        arts = replace(fitted, basket_ease=fit_basket_ease(train, ease))
        got = score(served_slates(snapshot, arts, placements))
        tried.append(f"basket_ease λ {lam:g}: {got:.4f}")
        if best is None or got > best[0] + 1e-12:
            best = (got, lam)
    assert best is not None
    lam = best[1]
    ease = spec.config.basket_ease.model_copy(update={"regularization": lam})
    arts = replace(fitted, basket_ease=fit_basket_ease(train, ease))
    best = None
    for w in BUY_AGAIN_WEIGHTS:
        spec.say(f"validation: shelfwise {name}, buy_again weight {w:g}")
        got = score(served_slates(snapshot, arts, weighted(placements, name, "buy_again", w)))
        tried.append(f"buy_again weight {w:g}: {got:.4f}")
        if best is None or got > best[0] + 1e-12:
            best = (got, w)
    assert best is not None
    choice = CartChoice(lam, best[1], tried=tried, validation=best[0])
    chosen = weighted(placements, name, "buy_again", choice.buy_again)
    placement = next(p for p in chosen if p.name == name)
    if placement.ranker == "cart":
        spec.say(f"validation: the cart task's ranker for {name}")
        started = time.perf_counter()
        try:
            rank = cart_ranker(train, arts, spec, placement, ranking)
        except InvalidInput as e:  # too little history of orders: the blend ranks
            tried.append(f"the cart task's ranker: not trained ({e.message})")
            return choice, fitted.content
        choice.ranker_seconds.append(round(time.perf_counter() - started, 1))
        got = score(served_slates(snapshot, arts, chosen, ranker=rank))
        tried.append(f"the cart task's ranker: {got:.4f} (blend ranker {choice.validation:.4f})")
        if got > choice.validation + 1e-12:
            choice.learned, choice.validation = True, got
    return choice, fitted.content


def serve(
    choice: CartChoice,
    train: InteractionLog,
    snapshot: CatalogSnapshot,
    placements: Sequence[Placement],
    spec: Spec,
    name: str,
    ranking: RankingSettings,
    content: NeighbourTable | None = None,
) -> ServedSlates:
    """The served pipeline of the test window: ``choice`` applied, fitted on ``train``."""
    ease = spec.config.basket_ease.model_copy(update={"regularization": choice.regularization})
    config = spec.config.model_copy(update={"basket_ease": ease})
    artifacts = fit_all(train, spec.products, config, content=content)
    chosen = weighted(placements, name, "buy_again", choice.buy_again)
    rank = None
    if choice.learned:
        spec.say(f"test: the cart task's ranker for {name}")
        started = time.perf_counter()
        placement = next(p for p in chosen if p.name == name)
        rank = cart_ranker(train, artifacts, replace(spec, config=config), placement, ranking)
        choice.ranker_seconds.append(round(time.perf_counter() - started, 1))
    return served_slates(snapshot, artifacts, chosen, ranker=rank)


__all__ = ["BUY_AGAIN_WEIGHTS", "REGULARIZATIONS", "CartChoice", "choose", "serve", "weighted"]
