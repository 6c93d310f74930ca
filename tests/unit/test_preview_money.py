"""The preview's money estimate on numbers written out by hand."""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import pytest

from shelfwise.pipeline.preview import MONEY_METHOD, NO_MONEY, PositionMoney, estimate


def placement(
    slates: int,
    bought: dict[int, int],
    before: dict[int, float],
    after: dict[int, float],
    units: dict[int, int] | None = None,
) -> PositionMoney:
    m = PositionMoney(slates=slates, bought=Counter(bought), units=Counter(units or bought))
    m.before = defaultdict(float, before)
    m.after = defaultdict(float, after)
    return m


def test_rate_by_position_times_price_with_its_interval() -> None:
    # 10 slates, 2 purchases at position 1; position 1 shows 500 worth before, 400 after.
    m = placement(10, {0: 2}, {0: 500.0, 1: 300.0}, {0: 400.0, 1: 300.0})
    got = estimate([m], "EUR")
    assert (got.before, got.after, got.change) == (100.0, 80.0, -20.0)
    p = (2 + 2) / (10 + 4)  # Agresti-Coull
    half = 1.959964 * math.sqrt(100.0**2 * p * (1 - p) / (10 + 4))
    assert got.low == pytest.approx(round(-20.0 - half, 2))
    assert got.high == pytest.approx(round(-20.0 + half, 2))
    assert (got.method, got.purchases, got.slates, got.currency) == (MONEY_METHOD, 2, 10, "EUR")


def test_units_bought_set_the_rate_and_scale_its_interval() -> None:
    # The same 2 purchase lines at position 1, of 3 units between them.
    m = placement(10, {0: 2}, {0: 500.0}, {0: 400.0}, units={0: 3})
    got = estimate([m], "EUR")
    assert (got.before, got.after, got.change) == (150.0, 120.0, -30.0)
    assert (got.purchases, got.units) == (2, 3)
    p = (2 + 2) / (10 + 4)
    half = 1.959964 * math.sqrt((1.5 * 100.0) ** 2 * p * (1 - p) / (10 + 4))
    assert got.low == pytest.approx(round(-30.0 - half, 2))
    assert got.high == pytest.approx(round(-30.0 + half, 2))


def test_no_purchase_no_estimate() -> None:
    got = estimate([placement(5, {}, {0: 50.0}, {0: 10.0})], "USD")
    assert got.method == NO_MONEY and got.change is None and got.low is None
