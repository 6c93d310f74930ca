"""Money never makes a value NaN: zero, missing and absurd prices; the ranker stays a ranker."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from shelfwise.candidates.base import Proposal, Reason, RecContext
from shelfwise.ranking import (
    CandidateSet,
    HistoryLog,
    ItemColumns,
    PlacementObjective,
    Ranker,
    RankingSettings,
    RankingState,
    TableNames,
)
from shelfwise.ranking.history import PURCHASE
from shelfwise.ranking.objective import (
    DEFAULT_OBJECTIVES,
    MAX_RELATIVE_PRICE,
    item_values,
    reference_price,
)
from shelfwise.ranking.state import DAY
from shelfwise.ranking.synthetic import SOURCES, START

PRICE = st.one_of(
    st.just(0.0),
    st.just(float("nan")),
    st.just(float("inf")),
    st.floats(-1e12, 1e308, allow_nan=False),
    st.floats(1e-300, 1e-3),
)
OBJECTIVES = [*DEFAULT_OBJECTIVES.values(), PlacementObjective(click=0, revenue=5, margin=5)]


def _state(prices: list[float]) -> tuple[ItemColumns, RankingState]:
    items = ItemColumns.unknown(len(prices), price=prices)
    log = HistoryLog.build(["ann"], [0], [0], [PURCHASE], [START])
    return items, RankingState.fit(log, items, START + DAY)


def test_reference_price_is_the_median_known_price_or_one() -> None:
    assert reference_price(np.array([0.0, np.nan, 2.0, 4.0, 6.0, -3.0])) == 4.0
    assert reference_price(np.array([2.0, 4.0, 6.0, 8.0])) == 4.0  # one of the prices
    assert reference_price(np.array([0.0, 0.0])) == 1.0
    assert reference_price(np.array([])) == 1.0
    assert reference_price(0.0) == 1.0  # a state saved before this rule
    assert _state([0.0, 0.0, 0.0])[1].ref_price == 1.0


@settings(max_examples=200, deadline=None)
@given(prices=st.lists(PRICE, min_size=1, max_size=12), margin=st.integers(-1, 2))
def test_every_value_is_finite_and_positive_for_any_price(prices: list[float], margin: int) -> None:
    items, state = _state(prices)
    items.margin_band[:] = margin
    idx = np.arange(len(prices))
    for objective in OBJECTIVES:
        values = item_values(objective, idx, items, state)
        assert np.isfinite(values).all(), (prices, objective)
        assert (values > 0).all() if objective.click > 0 else (values >= 0).all()
        bound = objective.click + (objective.revenue + objective.margin) * MAX_RELATIVE_PRICE
        assert (values <= bound + 1e-9).all()
    # an old state whose reference price is 0 (all prices 0) is still finite
    old = replace(state, ref_price=0.0)
    assert np.isfinite(item_values(OBJECTIVES[1], idx, items, old)).all()


@settings(max_examples=60, deadline=None)
@given(
    prices=st.lists(st.sampled_from([0.0, float("nan")]), min_size=2, max_size=12),
    scores=st.data(),
)
def test_without_prices_the_order_follows_relevance(
    prices: list[float], scores: st.DataObject
) -> None:
    """No known price and no margin band: the money term is neutral, so every
    placement's order is P(engagement)'s (the sources' fused rank here)."""
    items, state = _state(prices)
    n = len(prices)
    order = scores.draw(st.permutations(range(n)))
    proposal = Proposal(
        "popular",
        np.array(order, dtype=np.int64),
        np.linspace(1.0, 0.1, n),
        (Reason("popular", "popular_in"),) * n,
    )
    cands = CandidateSet.from_proposals([proposal], SOURCES)
    ranker = Ranker(state, TableNames((), ()), RankingSettings(explore_share=0.0), sources=SOURCES)
    ctx = RecContext("home", datetime.fromtimestamp(START + DAY, UTC))
    for objective in OBJECTIVES:
        ranked = ranker.rank(ctx, cands, items, objective, k=n, explain_items=False)
        assert ranked.items.tolist() == order, objective
        assert np.isfinite(ranked.scores).all() and np.isfinite(ranked.values).all()
        assert np.ptp(ranked.values) == 0.0  # the same value for every item
