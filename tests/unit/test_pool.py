"""The candidate pool: union of proposals, exclusions, exploration slots."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from shelfwise.candidates.base import Proposal, Reason
from shelfwise.candidates.neighbours import member
from shelfwise.pipeline.defaults import explore
from shelfwise.pipeline.pool import Pool


def _prop(source: str, items: list[int], scores: list[float]) -> Proposal:
    r = tuple(Reason(source, "similar_to", anchor=0) for _ in items)
    return Proposal(source, np.array(items, np.int64), np.array(scores), r)


def test_union_keeps_best_normalised_score_and_its_reason() -> None:
    a = _prop("a", [1, 2, 3], [10.0, 5.0, 0.0])  # -> 1.0, 0.5, 0.05
    b = _prop("b", [3, 4], [2.0, 1.0])  # -> 1.0, 0.5
    pool = Pool.union([a, b], exclude=frozenset({4}))
    assert pool.items.tolist() == [1, 3, 2]
    assert pool.score.tolist() == [1.0, 1.0, 0.5]
    assert pool.hits.tolist() == [1, 2, 1]
    assert [r.source for r in pool.reasons] == ["a", "b", "a"]
    assert pool.reason(1).source == "b"
    assert pool.sources == ("a", "b")
    assert pool.take(np.array([False, True, True])).items.tolist() == [3, 2]


def test_union_of_nothing_is_empty() -> None:
    assert len(Pool.union([Proposal.empty("a")])) == 0


@given(
    st.lists(
        st.lists(
            st.tuples(st.integers(0, 30), st.floats(-5, 5)), max_size=20, unique_by=lambda t: t[0]
        ),
        max_size=4,
    ),
    st.frozensets(st.integers(0, 30), max_size=5),
)
def test_union_invariants(lists: list[list[tuple[int, float]]], exclude: frozenset[int]) -> None:
    props = [_prop(f"s{i}", [x for x, _ in ls], [s for _, s in ls]) for i, ls in enumerate(lists)]
    pool = Pool.union(props, exclude)
    expected = {x for ls in lists for x, _ in ls} - exclude
    assert sorted(pool.items.tolist()) == sorted(expected)
    assert len(set(pool.items.tolist())) == len(pool)
    assert np.all(np.diff(pool.score) <= 0)
    assert np.all((pool.score > 0) & (pool.score <= 1))


def test_exploration_takes_tail_slots_from_the_next_ranks() -> None:
    order = np.arange(30)
    out = explore(order, k=10, share=0.2, seed=3)
    assert out.order[:8].tolist() == list(range(8))
    assert all(10 <= x < 30 for x in out.order[8:].tolist())
    assert out.explored.tolist() == [False] * 8 + [True] * 2
    assert out.propensity[8:].tolist() == [0.1, 0.1]
    assert explore(order, k=10, share=0.2, seed=3).order.tolist() == out.order.tolist()
    assert explore(order[:10], k=10, share=0.2, seed=3).explored.sum() == 0


@given(
    st.lists(st.integers(0, 60_000), max_size=400),
    st.lists(st.integers(0, 60_000), max_size=400),
    st.integers(0, 3),
)
def test_member_agrees_with_isin(values: list[int], of: list[int], overlap: int) -> None:
    v = np.array(values, np.int64)
    o = np.array(of + values[:overlap], np.int64)  # some values shared, at any size
    assert member(v, o).tolist() == np.isin(v, o).tolist()
    assert member(v, o).dtype == np.bool_ and len(member(v, o)) == len(v)
