"""Session peers on a three-session log whose right answers are written out by hand.

Training sessions (5 items): s0 = [0, 1, 2] (ends at t=10), s1 = [1, 3] (t=20),
s2 = [0, 4] (t=30). The prediction knows [0, 1]: item 1 is on screen.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shelfwise.candidates.log import InteractionLog
from shelfwise.evaluation.basket_protocol import Baskets, EaseHistory, ItemScores, hide_one
from shelfwise.evaluation.session_peers import (
    SKNN,
    VSKNN,
    CoViewKNN,
    SessionPopularity,
    position_weights,
    recommend,
)
from shelfwise.evaluation.sessions import Prefixes, Sessions, ranks, view_sessions


def sessions(rows: list[list[int]], ends: list[float], n_items: int = 5) -> Sessions:
    lengths = [len(r) for r in rows]
    times = np.concatenate(
        [np.linspace(e - len(r) + 1, e, len(r)) for r, e in zip(rows, ends, strict=True)]
    )
    return Sessions(
        np.r_[0, np.cumsum(lengths)].astype(np.int64),
        np.concatenate(rows).astype(np.int64),
        times,
        n_items,
    )


TRAIN = sessions([[0, 1, 2], [1, 3], [0, 4]], [10.0, 20.0, 30.0])
# One test session [0, 1, 9 -> 2]: its second prediction knows [0, 1].
QUERY = Prefixes.of(sessions([[0, 1, 2]], [40.0]))


def second(peer: object, k: int = 4) -> list[int]:
    peer.fit(TRAIN)  # type: ignore[attr-defined]
    lists = recommend(peer, QUERY, k)  # type: ignore[arg-type]
    return [i for i in lists[1].tolist() if i >= 0]


def test_prefixes_pose_one_prediction_per_next_view() -> None:
    assert QUERY.target.tolist() == [1, 2]
    assert QUERY.last.tolist() == [0, 1]
    assert QUERY.known(1).tolist() == [0, 1]


def test_popularity_counts_sessions_and_hides_the_item_on_screen() -> None:
    # counts: 0 -> 2, 1 -> 2 (on screen), 2, 3, 4 -> 1 each (ties: lower id)
    assert second(SessionPopularity()) == [0, 2, 3, 4]


def test_item_knn_is_the_shrunk_cosine_of_the_last_item() -> None:
    # sim(1, 0) = 1 / sqrt(2 * 2) = 0.5; sim(1, 2) = sim(1, 3) = 1 / sqrt(2 * 1) = 0.707
    assert second(CoViewKNN(lam=0.0)) == [2, 3, 0]
    peer = CoViewKNN(lam=1.0)
    peer.fit(TRAIN)
    got = peer.scores(QUERY, np.array([1]))[0]
    assert got[[0, 2, 3]] == pytest.approx([1 / 3, 1 / (np.sqrt(2) + 1), 1 / (np.sqrt(2) + 1)])


def test_sknn_sums_cosines_of_the_neighbour_sessions() -> None:
    # {0, 1} against s0: 2 / sqrt(2 * 3); s1 and s2: 1 / sqrt(2 * 2)
    peer = SKNN(k=10, sample=10)
    peer.fit(TRAIN)
    got = peer.scores(QUERY, np.array([1]))[0]
    s0, other = 2 / np.sqrt(6), 0.5
    assert got == pytest.approx([s0 + other, s0 + other, s0, other, other])
    assert second(SKNN(k=10, sample=10)) == [0, 2, 3, 4]


def test_sknn_keeps_the_k_nearest_of_the_most_recent_sample() -> None:
    assert second(SKNN(k=1, sample=10)) == [0, 2]  # s0 alone
    assert second(SKNN(k=10, sample=1)) == [0, 4]  # s2, the most recent sharing an item


def test_vsknn_weights_positions_and_idf() -> None:
    # linear weights of [0, 1]: 0.5, 1.0; dot products: s0 1.5, s1 1.0, s2 0.5
    peer = VSKNN(k=10, sample=10, weighting="linear")
    peer.fit(TRAIN)
    assert peer.scores(QUERY, np.array([1]))[0] == pytest.approx([2.0, 2.5, 1.5, 1.0, 0.5])
    assert second(VSKNN(k=10, sample=10)) == [0, 2, 3, 4]
    # idf log(3 / n_i): 0 -> log 1.5, 2, 3, 4 -> log 3: 0.811, 1.648, 1.099, 0.549
    assert second(VSKNN(k=10, sample=10, idf=True)) == [2, 3, 0, 4]


def test_position_weights() -> None:
    pos, length = np.array([1, 2]), np.array([2, 2])
    assert position_weights(pos, length, "linear") == pytest.approx([0.5, 1.0])
    assert position_weights(pos, length, "quadratic") == pytest.approx([0.25, 1.0])
    assert position_weights(pos, length, "log") == pytest.approx(
        [1 / np.log10(2.7), 1 / np.log10(1.7)]
    )
    assert position_weights(pos, length, "same") == pytest.approx([1.0, 1.0])


def test_ranks_are_one_based_and_zero_when_missing() -> None:
    lists = np.array([[3, 1, -1], [2, 0, 4]])
    assert ranks(lists, np.array([1, 5])).tolist() == [2, 0]


def log_of(rows: list[tuple[str, str, str, float]]) -> InteractionLog:
    """(basket, item, kind, epoch seconds) rows, one person per basket."""
    return InteractionLog.from_columns(
        people=[b for b, *_ in rows],
        products=[i for _, i, _, _ in rows],
        kinds=[k for _, _, k, _ in rows],
        at=np.array([t for *_, t in rows]),
        baskets=[b for b, *_ in rows],
        quantity=np.ones(len(rows)),
        price=np.full(len(rows), np.nan),
        items=["a", "b", "c", "d"],
    )


def test_view_sessions_collapse_repeats_and_follow_time() -> None:
    log = log_of(
        [
            ("s2", "c", "product_view", 50.0),
            ("s1", "b", "product_view", 11.0),
            ("s1", "a", "product_view", 10.0),
            ("s1", "b", "product_view", 12.0),  # a repeat of the view before it
            ("s1", "c", "purchase", 13.0),  # not a view
            ("s2", "a", "product_view", 51.0),
        ]
    )
    got = view_sessions(log)
    assert [got.session(s).tolist() for s in range(len(got))] == [[0, 1], [2, 0]]
    only = got.only_items(np.array([True, True, False, False]))
    assert [only.session(s).tolist() for s in range(len(only))] == [[0, 1]]


def test_hide_one_hides_an_item_bought_in_training() -> None:
    t0 = datetime(2024, 1, 10, tzinfo=UTC).timestamp()
    log = log_of(
        [
            ("o1", "a", "purchase", t0 - 100),
            ("o1", "b", "purchase", t0 - 100),
            ("o2", "a", "purchase", t0 + 10),
            ("o2", "b", "purchase", t0 + 10),
            ("o3", "c", "purchase", t0 + 20),  # c and d never bought before t0
            ("o3", "d", "purchase", t0 + 20),
            ("o4", "a", "purchase", t0 + 30),  # one item: nothing left to rank from
            ("o5", "a", "purchase", t0 + 90000),  # after the window
            ("o5", "b", "purchase", t0 + 90000),
        ]
    )
    got = hide_one(log, t0, t0 + 86400, seed=0)
    assert len(got) == 1
    assert sorted([*got.hidden.tolist(), *got.visible.tolist()]) == [0, 1]
    assert got.at.tolist() == [t0 + 10]
    assert [log.people[p] for p in got.person.tolist()] == ["o2"]  # who bought it


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.integers(0, 7), min_size=2, max_size=6), min_size=1, max_size=6),
    st.integers(1, 5),
)
def test_lists_are_distinct_without_the_item_on_screen(rows: list[list[int]], k: int) -> None:
    train = sessions(rows, [float(10 * (i + 1)) for i in range(len(rows))], n_items=8)
    query = Prefixes.of(sessions([rows[0]], [1000.0], n_items=8))
    for peer in (SessionPopularity(), CoViewKNN(), SKNN(k=2, sample=3), VSKNN(k=2, sample=3)):
        peer.fit(train)
        lists = recommend(peer, query, k)
        assert lists.shape == (len(query), k)
        for row, last in zip(lists.tolist(), query.last.tolist(), strict=True):
            shown = [i for i in row if i >= 0]
            assert len(shown) == len(set(shown)) and last not in shown
            assert row[len(shown) :] == [-1] * (k - len(shown))


def test_sknn_blocks_of_rows_give_the_same_scores(monkeypatch: pytest.MonkeyPatch) -> None:
    from shelfwise.evaluation import session_peers

    peer = VSKNN(k=2, sample=2, idf=True)
    peer.fit(TRAIN)
    whole = peer.scores(QUERY, np.array([0, 1]))
    monkeypatch.setattr(session_peers, "CELLS", 1)  # one row per block
    assert peer.scores(QUERY, np.array([0, 1])) == pytest.approx(whole)


def test_ease_history_adds_the_shoppers_own_purchases_to_the_baskets_scores() -> None:
    # people p0 (bought d twice, c once) and p1 (bought nothing); items a, b, c, d
    log = InteractionLog.from_columns(
        people=["p0", "p0", "p0", "p1"],
        products=["d", "d", "c", "a"],
        kinds=["purchase"] * 3 + ["product_view"],
        at=np.array([1.0, 2.0, 3.0, 4.0]),
        baskets=["o1", "o2", "o3", "v1"],
        quantity=np.ones(4),
        price=np.full(4, np.nan),
        items=["a", "b", "c", "d"],
    )
    # EASE-like rows: a basket of a scores b 1.0 and c 0.5
    rows = np.zeros((4, 4))
    rows[0, 1], rows[0, 2] = 1.0, 0.5
    ease = ItemScores("ease", rows)
    p0, p1 = log.people.index("p0"), log.people.index("p1")
    carts = Baskets(
        np.array([0, 1, 2]), np.array([0, 0]), np.array([3, 3]), np.zeros(2), np.array([p0, p1])
    )
    # weight 0: EASE alone (b, c); p1 has no purchases whatever the weight
    assert EaseHistory(ease, log, 0.0).lists(carts, 3, 4).tolist() == [[1, 2, -1], [1, 2, -1]]
    # c: 0.5 + 0.5 x log1p(1) / log1p(2); d: 0.5 x 1; b: 1.0
    assert EaseHistory(ease, log, 0.5).lists(carts, 3, 4).tolist() == [[1, 2, 3], [1, 2, -1]]
    # the shopper's own d (bought twice) first at weight 2; a, in the cart, never
    assert EaseHistory(ease, log, 2.0).lists(carts, 3, 4).tolist() == [[3, 2, 1], [1, 2, -1]]
