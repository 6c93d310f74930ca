"""Money without distortion: relative to the viewed product, bounded, and best sellers damped."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shelfwise.candidates.base import Proposal, Reason, RecContext
from shelfwise.ranking import (
    CandidateSet,
    HistoryLog,
    ItemColumns,
    PlacementObjective,
    RankingState,
)
from shelfwise.ranking import state as state_module
from shelfwise.ranking.history import PURCHASE
from shelfwise.ranking.objective import item_values
from shelfwise.ranking.ranker import anchor_price, chain_fit
from shelfwise.ranking.state import DAY
from shelfwise.ranking.synthetic import START

NOW = datetime(2026, 1, 1, tzinfo=UTC)
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


def _sold_in_lines(
    prices: list[float], lines: list[tuple[int, float]]
) -> tuple[ItemColumns, RankingState]:
    """A state where each (item, units) is one purchase line of that many units."""
    items = ItemColumns.unknown(len(prices), price=prices)
    n = len(lines)
    log = HistoryLog.build(
        ["ann"] * n,
        [0] * n,
        [i for i, _ in lines],
        [PURCHASE] * n,
        [START] * n,
        quantity=[q for _, q in lines],
    )
    return items, RankingState.fit(log, items, START + DAY)


def test_a_purchase_is_worth_its_price_times_the_items_units_per_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(state_module, "LINE_PRIOR", 0.0)  # the items' own lines only
    # equal prices; item 0 sells in cartons of 12 (lines of 12 and 12), item 1 one at a
    # time, item 2 never: the typical line is the median of the items' own (sqrt 12)
    items, state = _sold_in_lines([2.0, 2.0, 2.0], [(0, 12.0), (0, 12.0), (1, 1.0)])
    assert state.line_units == pytest.approx([12**0.5, 12**-0.5, 1.0])
    o = PlacementObjective(click=1.0, revenue=1.0, money_cap=None, **PLAIN)
    carton, single, unknown = item_values(o, np.arange(3), items, state)
    assert carton == pytest.approx(1.0 + 12**0.5)  # price = the reference price
    assert single == pytest.approx(1.0 + 12**-0.5)
    assert unknown == pytest.approx(2.0)
    # against a viewed carton item, a single is worth 1/12 of a purchase of it
    anchor = anchor_price(RecContext("product", NOW, context_items=(0,)), items, state.line_units)
    assert anchor == pytest.approx(2.0 * 12**0.5)
    _, single_there, _ = item_values(o, np.arange(3), items, state, anchor)
    assert single_there == pytest.approx(1.0 + 1 / 12)


def test_one_unit_a_line_leaves_every_value_at_its_price() -> None:
    sold = [(0, 1.0), (1, 1.0), (1, 1.0)]
    items, state = _sold_in_lines([5.0, 10.0, 20.0], sold)
    assert state.line_units == pytest.approx([1.0, 1.0, 1.0])
    o = PlacementObjective(click=1.0, revenue=1.0, money_cap=None, **PLAIN)
    assert item_values(o, np.arange(3), items, state) == pytest.approx([1.5, 2.0, 3.0])


def test_a_state_saved_before_line_units_values_purchases_at_their_price(tmp_path: Path) -> None:
    items, state = _sold_in_lines([2.0, 2.0], [(0, 12.0), (1, 1.0)])
    state.save(tmp_path)
    with np.load(tmp_path / "state.npz") as data:
        arrays = {k: data[k] for k in data.files if k != "line_units"}
    np.savez(tmp_path / "state.npz", **arrays)
    old = RankingState.load(tmp_path)
    assert old.line_units == pytest.approx([1.0, 1.0])
    o = PlacementObjective(click=1.0, revenue=1.0, money_cap=None, **PLAIN)
    assert item_values(o, np.arange(2), items, old) == pytest.approx([2.0, 2.0])


def test_a_line_is_worth_what_its_buyers_paid_not_the_catalogs_latest_price(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(state_module, "LINE_PRIOR", 0.0)
    # both listed at 2.00; item 0's buyers paid the trade price 1.00 for 12 units
    # (a line brings 12.00: 6 of its catalog price), item 1's paid 2.00 for one
    items = ItemColumns.unknown(3, price=[2.0, 2.0, float("nan")])
    log = HistoryLog.build(
        ["ann", "bob", "bob"],
        [0, 1, 1],
        [0, 1, 2],
        [PURCHASE] * 3,
        [START] * 3,
        price=[1.0, 2.0, 5.0],
        quantity=[12.0, 1.0, 3.0],
    )
    state = RankingState.fit(log, items, START + DAY)
    # the typical line is the median of the items' own (6 and 1: sqrt 6); item 2 has no
    # catalog price, so no line of it is measured against one
    assert state.line_units == pytest.approx([6**0.5, 6**-0.5, 1.0])


def test_an_items_few_lines_are_shrunk_towards_the_typical_line() -> None:
    # one line of two units against the store's lines of one: with LINE_PRIOR (5) lines
    # of the typical line beside it, it counts 2 ** (1/6), not 2
    sold = [(0, 2.0), *[(1, 1.0)] * 20, *[(2, 1.0)] * 20]
    _, state = _sold_in_lines([3.0, 3.0, 3.0], sold)
    assert state_module.LINE_PRIOR == 5.0
    assert state.line_units == pytest.approx([2 ** (1 / 6), 1.0, 1.0])
