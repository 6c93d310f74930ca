"""The learned ranker's reasons name what made the pool: when the chain's own reason
cannot be said (a personal one on an anonymous request), the chain's sources speak
before the sources only the ranker asked, whatever their weight in the model."""

from __future__ import annotations

import numpy as np

from shelfwise.candidates.base import Reason, RecContext
from shelfwise.ranking import FeatureSpec, RankingState, TableNames
from shelfwise.ranking.explain import explain
from shelfwise.ranking.synthetic import START, synthetic_store
from tests.unit.candidates_fixtures import T0


def test_the_chain_s_sources_speak_before_the_ranker_s_own() -> None:
    store = synthetic_store(n_items=20, n_persons=10, days=10, seed=1)
    state = RankingState.fit(store.log, store.items, START + 10 * 86400)
    spec = FeatureSpec.of(("factors", "cooccurrence", "regression"))
    names = TableNames(store.titles, store.categories)
    ctx = RecContext("home", T0, context_items=(3,))  # anonymous: "for you" cannot be said
    contributions = np.zeros((1, len(spec.names) + 1))
    contributions[0, 2 * 2] = 0.5  # regression's score: the model's strongest
    contributions[0, 2 * 1] = 0.1  # cooccurrence's
    reasons = [
        [
            Reason("factors", "for_you"),  # the chain's own reason (the blend's)
            Reason("regression", "also_viewed", anchor=3),
            Reason("cooccurrence", "also_viewed", anchor=3),
        ]
    ]
    items, categories = np.array([7]), np.array([1])
    args = (ctx, reasons, contributions, items, categories, spec, names, state)
    chained = explain(*args, chain=frozenset({"factors", "cooccurrence", "popular"}))
    assert chained[0][0].source == "cooccurrence"
    # without the chain named, the model's weight decides (the old order)
    assert explain(*args)[0][0].source == "regression"
