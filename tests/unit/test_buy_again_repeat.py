"""Buy again proposes only what the store's shoppers re-buy: repeat rates and their gate."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shelfwise.candidates.base import Reason, RecContext
from shelfwise.candidates.buyagain import BuyAgainSource, fit_cycles, fit_repeat
from shelfwise.candidates.config import BuyAgainConfig, EventWeights, FactorsConfig, SourcesConfig
from shelfwise.candidates.history import PersonHistory
from shelfwise.candidates.log import InteractionLog, Row
from shelfwise.candidates.model import fit_all
from shelfwise.ranking import FeatureSpec, RankingState, TableNames
from shelfwise.ranking.explain import explain
from shelfwise.ranking.features import BASE_FEATURES
from shelfwise.ranking.state import DAY
from shelfwise.ranking.synthetic import START, synthetic_store
from tests.unit.candidates_fixtures import T0, purchases

A, B, C, D, E = range(5)
CATEGORY = np.array([1, 1, 2, 2, 2], dtype=np.int32)  # A, B | C, D, E


def test_repeat_rates_shrink_item_to_category_to_store() -> None:
    baskets = [
        ("o1", "p1", ["A"]),  # p1 buys A on days 0, 10, 20: 3 purchases, 2 followed
        ("o2", "p1", ["A"]),
        ("o3", "p1", ["A"]),
        ("o4", "p2", ["A", "C"]),  # p2: A once; C on days 0 and 10
        ("o5", "p2", ["C"]),
        ("o6", "p3", ["B"]),  # two orders of one day: one purchase
        ("o7", "p3", ["B"]),
        ("o8", "p4", ["D"]),
    ]
    log = purchases(baskets, days=[0, 10, 20, 0, 10, 5, 5, 3])
    got = fit_repeat(log, CATEGORY, prior=2.0)
    # purchases / followed: A 4/2, B 1/0, C 2/1, D 1/0, E 0/0; the store 8/3
    store = 3 / 8
    cat1 = (2 + 2 * store) / (5 + 2)  # A and B: 5 purchases, 2 followed
    cat2 = (1 + 2 * store) / (3 + 2)  # C, D and E: 3 purchases, 1 followed
    assert store == 0.375 and cat1 == pytest.approx(0.392857, abs=1e-6) and cat2 == 0.35
    want = [
        (2 + 2 * cat1) / (4 + 2),  # A 0.4643
        (0 + 2 * cat1) / (1 + 2),  # B 0.2619
        (1 + 2 * cat2) / (2 + 2),  # C 0.425
        (0 + 2 * cat2) / (1 + 2),  # D 0.2333
        cat2,  # E, never bought: its category's
    ]
    assert got.tolist() == pytest.approx(want)
    assert got.round(4).tolist() == [0.4643, 0.2619, 0.425, 0.2333, 0.35]


def test_nobody_bought_anything_is_a_zero_rate() -> None:
    log = purchases([])
    assert fit_repeat(log, CATEGORY, prior=10.0).tolist() == [0.0] * 5


# (person, item, day) purchases on a store of five items
BUY = st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 30))


def log_of(buys: list[tuple[int, int, int]]) -> InteractionLog:
    rows = [
        Row(f"p{p}", "ABCDE"[i], "purchase", T0 + timedelta(days=d), basket=f"b{n}")
        for n, (p, i, d) in enumerate(buys)
    ]
    return InteractionLog.from_rows(rows, items=tuple("ABCDE"))


@settings(max_examples=60, deadline=None)
@given(
    buys=st.lists(BUY, min_size=1, max_size=30),
    prior=st.sampled_from([0.5, 10.0, 100.0]),
    again=st.integers(0, 29),
)
def test_rates_are_shares_and_rise_with_each_repeat(
    buys: list[tuple[int, int, int]], prior: float, again: int
) -> None:
    before = fit_repeat(log_of(buys), CATEGORY, prior)
    assert np.all((before >= 0) & (before <= 1))
    # The same person buys one of their items again, a day after their last purchase of it.
    p, i, _ = buys[again % len(buys)]
    last = max(d for q, j, d in buys if (q, j) == (p, i))
    after = fit_repeat(log_of([*buys, (p, i, last + 1)]), CATEGORY, prior)
    assert np.all((after >= 0) & (after <= 1))
    assert after[i] >= before[i] - 1e-12


def test_a_store_that_never_rebuys_gets_no_buy_again_one_that_does_gets_it() -> None:
    config = SourcesConfig(factors=FactorsConfig(factors=4, iterations=2))
    assert config.buy_again == BuyAgainConfig()  # the shipped gate
    later = RecContext("cart", T0 + timedelta(days=40), person_id="p1")
    # One-off goods: each person buys each item once.
    once = [("o1", "p1", ["A", "B"]), ("o2", "p2", ["A", "C"]), ("o3", "p1", ["D"])]
    artifacts = fit_all(purchases(once, days=[0, 5, 10]), [None] * 5, config)
    assert artifacts.repeat.tolist() == [0.0] * 5
    assert len(artifacts.sources()["buy_again"].propose(later, 5).items) == 0
    # Staples: p1 re-buys A every 10 days, p2 re-buys C.
    staples = [
        ("o1", "p1", ["A", "B"]),
        ("o2", "p1", ["A"]),
        ("o3", "p1", ["A"]),
        ("o4", "p2", ["C"]),
        ("o5", "p2", ["C"]),
    ]
    artifacts = fit_all(purchases(staples, days=[0, 10, 20, 0, 10]), [None] * 5, config)
    assert artifacts.repeat[A] == pytest.approx((2 + 100 * 3 / 6) / (3 + 100))  # the store's 3/6
    got = artifacts.sources()["buy_again"].propose(later, 5)
    assert got.items.tolist() == [A, B] and {r.kind for r in got.reasons} == {"buy_again"}


def test_the_gate_is_per_item() -> None:
    # p1 bought A, B and C; only A and C are re-bought often enough in this store.
    log = purchases([("o1", "p1", ["A", "B", "C"])])
    history = PersonHistory.fit(log, EventWeights().array(), 30.0)
    repeat = np.array([0.4, 0.05, 0.12, 0.0, 0.0])
    gated = BuyAgainSource(history, fit_cycles(log), repeat, BuyAgainConfig(min_repeat=0.12))
    ctx = RecContext("cart", T0 + timedelta(days=3), person_id="p1")
    assert sorted(gated.propose(ctx, 5).items.tolist()) == [A, C]
    open_gate = BuyAgainSource(history, fit_cycles(log), repeat, BuyAgainConfig(min_repeat=0.0))
    assert sorted(open_gate.propose(ctx, 5).items.tolist()) == [A, B, C]


def test_the_rankers_buy_again_reasons_need_the_buy_again_source() -> None:
    store = synthetic_store(n_items=20, n_persons=10, days=10, seed=1)
    state = RankingState.fit(store.log, store.items, START + 10 * DAY)
    spec = FeatureSpec.of(("buy_again", "complements"))
    names = TableNames(store.titles, store.categories)
    person = state.persons[0]
    ctx = RecContext("cart", T0, person_id=person)
    # Two items the ranker would explain by the shopper's past purchases alone.
    contributions = np.zeros((2, len(spec.names) + 1))
    contributions[:, len(spec.sources) * 2 + BASE_FEATURES.index("bought_count")] = 1.0
    reasons = [
        [Reason("buy_again", "buy_again")],  # proposed by buy_again: re-bought here
        [Reason("complements", "goes_with", label="home/category 1")],  # a one-off good
    ]
    items, categories = np.array([0, 1]), np.array([1, 1])
    said = explain(ctx, reasons, contributions, items, categories, spec, names, state)
    assert [e.text for e in said[0]] == ["Buy it again"]
    assert [e.text for e in said[1]] == ["Shoppers often add Category 1"]
