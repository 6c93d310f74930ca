from __future__ import annotations

import numpy as np
import pytest

from shelfwise.candidates.base import RecContext
from shelfwise.candidates.config import CooccurrenceConfig, EventWeights
from shelfwise.candidates.cooccurrence import CooccurrenceSource, fit_cooccurrence
from shelfwise.candidates.history import PersonHistory
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
    assert got.reasons[0].kind == "because_you_viewed"
    got = source.propose(
        RecContext("product_page", T0, context_items=(A,), exclude=frozenset({B})), 10
    )
    assert got.items.tolist() == [C]
    assert source.propose(RecContext("home", T0, person_id="nobody"), 10).items.tolist() == []
