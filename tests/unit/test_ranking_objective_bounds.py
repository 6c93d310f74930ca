"""Money without distortion: relative to the viewed product, bounded, and best sellers damped."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shelfwise.candidates.base import Proposal, Reason
from shelfwise.ranking import (
    CandidateSet,
    HistoryLog,
    ItemColumns,
    PlacementObjective,
    RankingState,
)
from shelfwise.ranking.history import PURCHASE
from shelfwise.ranking.objective import item_values
from shelfwise.ranking.ranker import chain_fit
from shelfwise.ranking.state import DAY
from shelfwise.ranking.synthetic import START

# No SLA or stock discount: the value is the money blend alone.
PLAIN = {"sla_penalty_per_day": 0.0, "min_cover_days": 0.0}


def _state(prices: list[float], sold: list[int] | None = None) -> tuple[ItemColumns, RankingState]:
    items = ItemColumns.unknown(len(prices), price=prices)
    sold = sold or [0]
    log = HistoryLog.build(
        ["ann"] * len(sold), [0] * len(sold), sold, [PURCHASE] * len(sold), [START] * len(sold)
    )
    return items, RankingState.fit(log, items, START + DAY)


@settings(max_examples=100, deadline=None)
@given(
    prices=st.lists(st.floats(0.01, 1e6), min_size=1, max_size=10),
    anchor=st.one_of(st.none(), st.floats(0.01, 1e6)),
    revenue=st.floats(0, 10),
    margin=st.floats(0, 10),
    cap=st.floats(0, 2),
)
def test_money_adds_at_most_money_cap_times_the_click_value(
    prices: list[float], anchor: float | None, revenue: float, margin: float, cap: float
) -> None:
    items, state = _state(prices)
    o = PlacementObjective(click=0.8, revenue=revenue, margin=margin, money_cap=cap, **PLAIN)
    v = item_values(o, np.arange(len(prices)), items, state, anchor)
    assert np.all(v >= 0.8 - 1e-12) and np.all(v <= 0.8 * (1 + cap) + 1e-12)


def test_price_counts_against_the_viewed_product_and_a_dear_item_gains_little() -> None:
    # viewed product EUR 10; candidates EUR 10 and EUR 370 (a premium print)
    items, state = _state([10.0, 370.0, 50.0])
    o = PlacementObjective(click=0.8, revenue=0.2, margin=0.0, **PLAIN)
    same, dear = item_values(o, np.array([0, 1]), items, state, anchor_price=10.0)
    assert same == pytest.approx(0.8 * (1 + 0.25 * 0.5))  # m = 1: half of the cap's share
    assert dear / same < 1.12  # 37 times the price, not even 12% more value
    linear = o.model_copy(update={"money_cap": None})
    l_same, l_dear = item_values(linear, np.array([0, 1]), items, state, anchor_price=10.0)
    assert l_dear / l_same > 8  # the unbounded blend of before: price wins


def test_popularity_penalty_damps_the_best_seller() -> None:
    items, state = _state([10.0, 10.0, 10.0], sold=[0] * 20 + [1])
    base = PlacementObjective(click=1.0, **PLAIN)
    damped = base.model_copy(update={"popularity_penalty": 1.0})
    v0 = item_values(base, np.arange(3), items, state)
    v1 = item_values(damped, np.arange(3), items, state)
    assert v0[0] == v0[2]
    assert v1[0] < v1[1] < v1[2] == v0[2]


def test_chain_fit_follows_the_placements_own_score() -> None:
    why = Reason("substitutes", "similar_to", anchor=9)
    chain = Proposal("blend", np.array([0, 1, 2]), np.array([1.0, 0.5, 0.25]), (why,) * 3)
    other = Proposal("popular", np.array([3]), np.array([1.0]), (Reason("popular", "popular_in"),))
    cands = CandidateSet.from_proposals([chain, other], ("popular", "blend"))
    fit = dict(zip(cands.items.tolist(), chain_fit(cands, 2.0).tolist(), strict=True))
    assert fit[0] == 1.0 and fit[1] == pytest.approx(0.25) and fit[2] == pytest.approx(1 / 16)
    assert fit[3] == pytest.approx(1e-12)  # not the placement's: next to nothing
    no_chain = CandidateSet.from_proposals([other], ("popular",))
    assert chain_fit(no_chain, 2.0).tolist() == [1.0]
