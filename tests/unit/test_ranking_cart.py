"""The cart ranker task: each order with one item hidden is a cart request by the person
who placed it, labelled by the hidden item (``ranking.dataset.cart_requests`` /
``build_cart_set``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shelfwise.candidates.base import Proposal, Reason, RecContext
from shelfwise.ranking.dataset import build_cart_set, cart_requests
from shelfwise.ranking.features import FeatureSpec
from shelfwise.ranking.history import CART, PURCHASE, VIEW, HistoryLog
from shelfwise.ranking.items import ItemColumns
from shelfwise.ranking.ranker import ranker_folder
from shelfwise.ranking.state import DAY, RankingState

T = 1_700_000_000


def _log(rows: Sequence[tuple[int, int, int, int]]) -> HistoryLog:
    """``(person, item, kind, seconds after T)`` rows; people ann, bob, cy."""
    p, i, k, at = zip(*rows, strict=True)
    return HistoryLog.build(["ann", "bob", "cy"], p, i, k, [T + a for a in at])


ROWS = [
    (0, 1, PURCHASE, -100),  # ann's order before the window: her history
    (0, 2, PURCHASE, -100),
    (0, 1, PURCHASE, 10),  # ann's order of 1, 2, 3 (2 twice: one item)
    (0, 2, PURCHASE, 10),
    (0, 2, PURCHASE, 10),
    (0, 3, PURCHASE, 10),
    (0, 4, CART, 20),  # carted, not bought: no order
    (0, 5, VIEW, 20),
    (1, 6, PURCHASE, 10),  # bob's order at the same second as ann's: his own
    (1, 7, PURCHASE, 10),
    (2, 8, PURCHASE, 30),  # cy's order of one item: nothing left for a cart
    (1, 3, PURCHASE, DAY + 5),  # after the window
    (1, 4, PURCHASE, DAY + 5),
]


def test_an_order_is_one_persons_purchases_at_one_time_with_one_item_hidden() -> None:
    got = cart_requests(_log(ROWS), T, T + DAY, seed=1)
    assert [(r.person, r.at - T) for r in got] == [(0, 10), (1, 10)]
    ann, bob = got
    assert sorted([*ann.cart, ann.hidden]) == [1, 2, 3]
    assert sorted([*bob.cart, bob.hidden]) == [6, 7]
    assert ann.hidden not in ann.cart and bob.hidden not in bob.cart


def test_max_items_and_limit_cap_the_requests() -> None:
    log = _log(ROWS)
    assert [r.person for r in cart_requests(log, T, T + DAY, max_items=2)] == [1]
    assert len(cart_requests(log, T, T + DAY, limit=1, seed=4)) == 1
    assert cart_requests(log, T + 11, T + DAY) == []  # the orders are before the window


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.integers(0, 2),
            st.integers(0, 9),
            st.sampled_from([VIEW, CART, PURCHASE]),
            st.integers(0, 5),
        ),
        max_size=40,
    ),
    seed=st.integers(0, 3),
)
def test_every_request_is_a_whole_order_split_into_cart_and_hidden(
    rows: list[tuple[int, int, int, int]], seed: int
) -> None:
    if not rows:
        return
    got = cart_requests(_log(rows), T, T + DAY, seed=seed)
    orders = {
        (p, at): {i for q, i, k, a in rows if (q, a, k) == (p, at, PURCHASE)}
        for p, _, kind, at in rows
        if kind == PURCHASE
    }
    assert len(got) == sum(len(items) >= 2 for items in orders.values())
    for r in got:
        assert {*r.cart, r.hidden} == orders[(r.person, r.at - T)]
        assert len(set(r.cart)) == len(r.cart) and r.hidden not in r.cart


def _proposals(ctx: RecContext) -> Sequence[Proposal]:
    # a source proposing 1..7 except what the request excludes
    items = np.array([i for i in range(1, 8) if i not in ctx.exclude], dtype=np.int64)
    reasons = tuple(Reason("complements", "goes_with", label="x") for _ in items)
    return [Proposal("complements", items, np.linspace(1.0, 0.5, len(items)), reasons)]


def test_the_training_set_labels_the_hidden_item_and_never_proposes_the_cart() -> None:
    log = _log(ROWS)
    items = ItemColumns.unknown(10, price=np.arange(1.0, 11.0))
    spec = FeatureSpec.of(("complements",))
    state = RankingState.fit(log, items, T)
    got = build_cart_set(log, items, state, spec, _proposals, T, DAY)
    wanted = cart_requests(log, T, T + DAY, seed=T)
    assert got.persons == ["ann", "bob"]
    assert got.groups.tolist() == [7 - len(r.cart) for r in wanted]
    starts = np.concatenate([[0], np.cumsum(got.groups)])
    for g, r in enumerate(wanted):
        rows = slice(starts[g], starts[g + 1])
        assert not set(got.items[rows].tolist()) & set(r.cart)
        assert got.items[rows][got.y[rows] == 3].tolist() == [r.hidden]
        assert set(got.y[rows].tolist()) == {0, 3}
    # ann bought 1 and 2 before T: the feature of her own purchases says so
    bought = spec.names.index("bought_count")
    ann = got.items[: got.groups[0]]
    assert got.x[: got.groups[0], bought].tolist() == [np.log1p(i in (1, 2)) for i in ann]
    with pytest.raises(ValueError, match="decision time"):
        build_cart_set(log, items, state, spec, _proposals, T + 1, DAY)


def test_a_request_whose_candidates_miss_the_hidden_item_is_skipped() -> None:
    log = _log(ROWS)
    items = ItemColumns.unknown(10)
    spec = FeatureSpec.of(("complements",))
    state = RankingState.fit(log, items, T)

    def nothing_useful(ctx: RecContext) -> Sequence[Proposal]:
        reasons = (Reason("complements", "goes_with", label="x"),)
        return [Proposal("complements", np.array([9]), np.array([1.0]), reasons)]

    got = build_cart_set(log, items, state, spec, nothing_useful, T, DAY)
    assert len(got.groups) == 0 and got.x.shape == (0, len(spec.names))


def test_the_cart_tasks_ranker_has_its_own_folder() -> None:
    assert ranker_folder("cart") == "ranker_cart"
