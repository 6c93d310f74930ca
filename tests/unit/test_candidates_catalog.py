"""Degraded mode's tables: the ordinary sources over what the catalog alone can say."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from shelfwise.candidates.base import RecContext, SessionEvent
from shelfwise.candidates.catalog import (
    SeasonalSource,
    category_neighbours,
    no_history,
    popularity_order,
    rank_popularity,
)
from shelfwise.candidates.config import SourcesConfig
from shelfwise.candidates.content import ContentSource
from shelfwise.candidates.popular import PopularSource
from shelfwise.candidates.session import SessionSource

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)
# items 0..5: category 1 = {0, 1, 2, 3} (brands 1, 2, 1, 0), category 2 = {4}, none = {5}
CATEGORY = np.array([1, 1, 1, 1, 2, 0], np.int32)
BRAND = np.array([1, 2, 1, 0, 1, 1], np.int32)
WEIGHT = np.array([0.0, 9.0, 1.0, 5.0, 7.0, 8.0])  # popularity: 1, 5, 4, 3, 2, 0


def _table(width: int = 3) -> tuple[np.ndarray, np.ndarray, object]:
    order, score = popularity_order(WEIGHT)
    return order, score, category_neighbours(order, score, CATEGORY, BRAND, width)


def test_the_popularity_order_breaks_ties_by_catalog_order_and_scores_every_item() -> None:
    order, score = popularity_order(np.array([0.0, 2.0, 0.0, 2.0]))
    assert order.tolist() == [1, 3, 0, 2]
    assert score[1] == 1.0 and (score > 0).all() and (np.diff(score[order]) < 0).all()


def test_neighbours_are_the_category_most_popular_first_the_anchor_brand_before_them() -> None:
    _, _, table = _table()
    items, _ = table.of(0)  # brand 1: item 2 (brand 1) first, then 1 and 3 by popularity
    assert items.tolist() == [2, 1, 3]
    items, scores = table.of(1)  # brand 2: nobody shares it; popularity order
    assert items.tolist() == [3, 2, 0] and (np.diff(scores) < 0).all()
    assert table.of(4)[0].tolist() == []  # alone in its category
    assert table.of(5)[0].tolist() == []  # no category: no neighbours


@settings(max_examples=60, deadline=None)
@given(
    cats=st.lists(st.integers(0, 4), min_size=1, max_size=40),
    data=st.data(),
    width=st.integers(1, 6),
)
def test_neighbours_share_the_category_never_the_item_and_are_best_first(
    cats: list[int], data: st.DataObject, width: int
) -> None:
    n = len(cats)
    category = np.array(cats, np.int32)
    brand = np.array(data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), np.int32)
    weight = np.array(data.draw(st.lists(st.floats(0, 100), min_size=n, max_size=n)))
    order, score = popularity_order(weight)
    table = category_neighbours(order, score, category, brand, width)
    for i in range(n):
        items, scores = table.of(i)
        same = int(((category == category[i]) & (np.arange(n) != i)).sum()) if cats[i] else 0
        assert len(items) == min(width, same)
        assert i not in items.tolist() and (category[items] == category[i]).all()
        assert (np.diff(scores) <= 0).all()


def test_the_ordinary_sources_read_the_catalog_tables() -> None:
    _, score, table = _table()
    config = SourcesConfig()
    content = ContentSource(table, no_history())  # type: ignore[arg-type]
    got = content.propose(RecContext("pdp", NOW, context_items=(0,), exclude=frozenset({0})), 5)
    assert got.items.tolist() == [2, 1, 3] and got.reasons[0].kind == "similar_to"
    assert got.reasons[0].anchor == 0
    session = SessionSource(table, config.session, config.events)  # type: ignore[arg-type]
    views = (SessionEvent(1, "product_view", NOW),)
    got = session.propose(RecContext("home", NOW, session=views), 5)
    assert got.items.tolist() == [3, 2, 0] and got.reasons[0].kind == "because_you_viewed"
    # an item bought in the session is said to be bought, one only viewed to be viewed
    both = (SessionEvent(1, "product_view", NOW), SessionEvent(3, "purchase", NOW))
    got = session.propose(RecContext("home", NOW, session=both), 5)
    assert any(r.kind == "because_you_bought" for r in got.reasons)
    assert all((r.kind == "because_you_bought") == (r.anchor == 3) for r in got.reasons)
    popular = PopularSource(rank_popularity(score), CATEGORY, ("", "decor", "garden"))
    got = popular.propose(RecContext("home", NOW, exclude=frozenset({1})), 3)
    assert got.items.tolist() == [5, 4, 3]  # the store's most popular, 1 excluded
    got = popular.propose(RecContext("pdp", NOW, context_items=(4,)), 2)
    assert got.items.tolist()[0] == 4 and got.reasons[0].label == "garden"


def test_the_season_source_proposes_the_month_s_tagged_products() -> None:
    order, score = popularity_order(WEIGHT)
    tags = [("christmas",), (), ("winter", "christmas"), (), ("summer",), ("christmas",)]
    source = SeasonalSource.of(tags, order, score)
    got = source.propose(RecContext("home", NOW, exclude=frozenset({5})), 5)
    assert got.items.tolist() == [2] and got.reasons[0].label == "winter"  # December: winter first
    july = source.propose(RecContext("home", NOW.replace(month=7)), 5)
    assert july.items.tolist() == [4] and july.reasons[0].kind == "seasonal"
    assert source.propose(RecContext("home", NOW.replace(month=3)), 5).items.tolist() == []
