"""The notebook API: the served pipeline, fitted on a log up to a cutoff, one person at a time.

Three lines from a log to what the store would serve::

    from shelfwise.evaluation import Notebook
    nb = Notebook.fit(log, cutoff, products=products, rules=rules, ranker=True)
    nb.recommend("12347", k=10)

The slates are the served pipeline's (``evaluation.served.ServedModel``: the
placement's candidates, the rules in force, the learned ranker when asked for,
the arrangement), with their reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from shelfwise.candidates.config import SourcesConfig
from shelfwise.candidates.log import InteractionLog
from shelfwise.catalog.model import Product
from shelfwise.evaluation.served import ServedModel
from shelfwise.ranking.training import RANKER_CHOICES, RankerTrainingConfig
from shelfwise.rules.model import Rule
from shelfwise.serving.placements import Placement, shipped_placements


@dataclass(frozen=True)
class Recommendation:
    product_id: str
    score: float
    source: str
    reason: str  # the kind of the first reason
    text: str  # the first reason as the shopper reads it
    anchor: str | None
    fallback: bool


class Notebook:
    """Fit the served pipeline on a log up to a cutoff, then ask for one person's slate.

    >>> nb = Notebook.fit(log, cutoff=datetime(2011, 11, 25, tzinfo=UTC))  # doctest: +SKIP
    >>> nb.recommend("12347", k=10, new_only=True)  # doctest: +SKIP
    """

    def __init__(self, model: ServedModel) -> None:
        self.model = model

    @classmethod
    def fit(
        cls,
        log: InteractionLog,
        cutoff: datetime,
        config: SourcesConfig | None = None,
        products: Sequence[Product | None] = (),
        placement: str | Placement = "home",
        rules: Sequence[Rule] = (),
        ranker: bool | RankerTrainingConfig = False,
    ) -> Notebook:
        """``placement``: a shipped placement's name, or a placement. ``rules``: the
        merchant's rules (``shelfwise.rules.parse_rule``). ``ranker``: the learned ranker
        as ``shelfwise train --ranker`` trains it (True: its design, or the blend ranker,
        chosen on the validation window before the cutoff) or with this config."""
        spot = shipped_placements().get(placement) if isinstance(placement, str) else placement
        model = ServedModel(
            config or SourcesConfig(),
            products,
            placement=spot,
            rules=rules,
            ranker=ranker if isinstance(ranker, RankerTrainingConfig) else None,
            choices=RANKER_CHOICES if ranker is True else (),
            cutoff=cutoff.timestamp(),
        )
        model.fit(log.before(cutoff.timestamp()))
        return cls(model)

    def history(self, person_id: str) -> list[str]:
        h = self.model.artifacts.history
        p = h.index(person_id)
        return [] if p is None else [self.model.train.items[i] for i in h.items[h.row(p)]]

    def recommend(
        self, person_id: str, k: int = 10, new_only: bool = False
    ) -> list[Recommendation]:
        """The slate the store would serve this person (``new_only``: nothing they had)."""
        exclude: frozenset[int] = frozenset()
        if new_only:
            vocab = self.model.snapshot.vocab
            exclude = frozenset(vocab[i] for i in self.history(person_id))
        slate = self.model.slate(person_id, k, exclude)
        out = []
        for shown in slate.items:
            first = shown.reasons[0] if shown.reasons else None
            out.append(
                Recommendation(
                    product_id=shown.product_id,
                    score=shown.score,
                    source=first.source if first else "",
                    reason=first.kind if first else "",
                    text=first.text if first else "",
                    anchor=first.anchor if first else None,
                    fallback=first.fallback if first else False,
                )
            )
        return out
