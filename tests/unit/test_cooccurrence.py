from __future__ import annotations

import numpy as np
import pytest

from shelfwise.candidates.base import RecContext
from shelfwise.candidates.config import CooccurrenceConfig, EventWeights
from shelfwise.candidates.cooccurrence import CooccurrenceSource, fit_cooccurrence
from shelfwise.candidates.history import PersonHistory
from shelfwise.candidates.log import InteractionLog, Row
from tests.unit.candidates_fixtures import ABC, T0, purchases

A, B, C, D, E = range(5)
BASKETS_ONLY = CooccurrenceConfig(person_weight=0.0, shrink=0.0, half_life_days=1e6)


def test_neighbours_by_cosine_are_written_out() -> None:
    table = fit_cooccurrence(purchases(ABC), BASKETS_ONLY, EventWeights())
    # C_AB = 2, C_AA = 3, C_BB = 2, C_AC = 1, C_CC = 1 (times ln(2)^2, which cancels).
    items, scores = table.of(A)
    assert items.tolist() == [B, C]
    assert scores == pytest.approx([2 / np.sqrt(6), 1 / np.sqrt(3)], rel=1e-6)
    assert table.of(B)[0].tolist() == [A]
    assert table.of(C)[0].tolist() == [A]
    assert table.of(D)[0].tolist() == [E]
    assert table.of(E)[0].tolist() == [D]


def test_significance_zero_is_the_conditional_share() -> None:
    config = BASKETS_ONLY.model_copy(update={"significance": 0.0})
    items, scores = fit_cooccurrence(purchases(ABC), config, EventWeights()).of(A)
    assert items.tolist() == [B, C]
    assert scores == pytest.approx([2 / 3, 1 / 3], rel=1e-6)


def test_significance_one_damps_the_popular_neighbour() -> None:
    # From B's side, A is popular (3 baskets): s=1 divides by C_AA fully.
    config = BASKETS_ONLY.model_copy(update={"significance": 1.0})
    _, scores = fit_cooccurrence(purchases(ABC), config, EventWeights()).of(B)
    assert scores == pytest.approx([2 / 3])


def test_source_uses_context_then_history_and_excludes() -> None:
    log = purchases(ABC)
    table = fit_cooccurrence(log, BASKETS_ONLY, EventWeights())
    history = PersonHistory.fit(log, EventWeights().array(), 30.0)
    source = CooccurrenceSource(table, history, BASKETS_ONLY, 30.0)
    got = source.propose(RecContext("product_page", T0, context_items=(A,)), 10)
    assert got.items.tolist() == [B, C]
    assert [r.kind for r in got.reasons] == ["also_viewed"] * 2
    assert {r.anchor for r in got.reasons} == {A}
    got = source.propose(RecContext("home", T0, person_id="p3"), 10)
    assert got.items.tolist() == [B]  # p3 bought A and C; B is A's other neighbour
    # p3 bought its anchors: a purchase is not a view (a purchase-only log has no views)
    assert [(r.kind, r.anchor) for r in got.reasons] == [("because_you_bought", A)]
    got = source.propose(
        RecContext("product_page", T0, context_items=(A,), exclude=frozenset({B})), 10
    )
    assert got.items.tolist() == [C]
    assert source.propose(RecContext("home", T0, person_id="nobody"), 10).items.tolist() == []


def test_a_history_anchor_is_said_bought_only_where_the_person_bought_it() -> None:
    """A person's own items as anchors: "because you bought X" for what they bought,
    "because you viewed X" for what they only looked at, whatever the weights."""
    rows = [
        Row(person="p1", item="A", kind="purchase", at=T0, basket="o1"),
        Row(person="p1", item="B", kind="purchase", at=T0, basket="o1"),
        Row(person="p2", item="A", kind="purchase", at=T0, basket="o2"),
        Row(person="p2", item="C", kind="purchase", at=T0, basket="o2"),
        Row(person="p3", item="D", kind="purchase", at=T0, basket="o4"),
        Row(person="p3", item="E", kind="purchase", at=T0, basket="o4"),
        Row(person="v", item="A", kind="product_view", at=T0, basket=None),
        Row(person="m", item="A", kind="product_view", at=T0, basket=None),
        Row(person="m", item="C", kind="purchase", at=T0, basket="o3"),
        Row(person="m", item="D", kind="purchase", at=T0, basket="o3"),
    ]
    log = InteractionLog.from_rows(rows, items=("A", "B", "C", "D", "E"))
    table = fit_cooccurrence(log, BASKETS_ONLY, EventWeights())
    history = PersonHistory.fit(log, EventWeights().array(), 30.0)
    source = CooccurrenceSource(table, history, BASKETS_ONLY, 30.0)
    viewer = source.propose(RecContext("home", T0, person_id="v"), 10)
    assert viewer.items.tolist() == [B, C]  # A's neighbours
    assert {(r.anchor, r.kind) for r in viewer.reasons} == {(A, "because_you_viewed")}
    mixed = source.propose(RecContext("home", T0, person_id="m"), 10)
    said = {int(i): (r.anchor, r.kind) for i, r in zip(mixed.items, mixed.reasons, strict=True)}
    assert said[B] == (A, "because_you_viewed")  # only A leads to B: A was viewed
    assert said[E] == (D, "because_you_bought")  # E goes with D, which m bought
    assert set(said) == {B, E}  # the person's own items are not proposed
    assert history.bought_any(history.index("m"), np.array([A, C, D, E])).tolist() == [
        False,
        True,
        True,
        False,
    ]
