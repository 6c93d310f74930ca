"""Basket EASE on the tiny baskets of ``candidates_fixtures`` (EASE by hand)."""

from __future__ import annotations

import pytest

from shelfwise.candidates.base import RecContext
from shelfwise.candidates.basket_ease import BasketEaseSource, fit_basket_ease
from shelfwise.candidates.config import BasketEaseConfig
from tests.unit.candidates_fixtures import ABC, T0, purchases

A, B, C, D, E = range(5)
CONFIG = BasketEaseConfig(regularization=1.0, width=4, min_support=1)


def cart(*items: int) -> RecContext:
    return RecContext("cart", T0, cart_items=items, exclude=frozenset(items))


def test_a_cart_scores_the_closed_form_of_its_items() -> None:
    # Gram + I over A, B, C: [[4, 2, 1], [2, 3, 0], [1, 0, 2]], det 13; its inverse P
    # has P_AB = -4/13, P_BB = 7/13, P_AC = -3/13, P_CC = 8/13: B_ij = -P_ij / P_jj.
    src = BasketEaseSource(fit_basket_ease(purchases(ABC), CONFIG))
    got = src.propose(cart(A), 5)
    assert got.items.tolist() == [B, C]
    assert got.scores == pytest.approx([4 / 7, 3 / 8])
    # D and E: [[2, 1], [1, 2]]: B_DE = 1 / 2.
    got = src.propose(cart(D), 5)
    assert got.items.tolist() == [E]
    assert got.scores == pytest.approx([0.5])


def test_only_items_bought_together_are_proposed_and_named() -> None:
    src = BasketEaseSource(fit_basket_ease(purchases(ABC), CONFIG))
    got = src.propose(cart(B), 5)
    assert got.items.tolist() == [A]  # B and C never share a basket
    got = src.propose(cart(B, D), 5)
    assert dict(zip(got.items.tolist(), [r.anchor for r in got.reasons], strict=True)) == {
        A: B,
        E: D,
    }
    assert {(r.source, r.kind) for r in got.reasons} == {("basket_ease", "often_bought_with")}


def test_nothing_without_a_cart_or_a_viewed_item() -> None:
    src = BasketEaseSource(fit_basket_ease(purchases(ABC), CONFIG))
    assert len(src.propose(RecContext("cart", T0), 5).items) == 0
    viewed = RecContext("product_bought_with", T0, context_items=(D,), exclude=frozenset({D}))
    assert src.propose(viewed, 5).items.tolist() == [E]


def test_the_model_keeps_the_items_of_most_support() -> None:
    small = fit_basket_ease(purchases(ABC), CONFIG.model_copy(update={"max_items": 2}))
    assert small.of(A)[0].tolist() == [B]  # A (3 baskets) and B (2) only
    assert small.of(D)[0].tolist() == []
    rare = fit_basket_ease(purchases(ABC), CONFIG.model_copy(update={"min_support": 2}))
    assert rare.of(D)[0].tolist() == []
