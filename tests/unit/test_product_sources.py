"""Substitutes and complements, on tiny catalogs whose right answers are written out."""

from __future__ import annotations

import numpy as np
import pytest

from shelfwise.candidates.base import RecContext
from shelfwise.candidates.complements import (
    ComplementsSource,
    fit_category_lift,
    fit_copurchase,
)
from shelfwise.candidates.config import ComplementsConfig, SubstitutesConfig
from shelfwise.candidates.log import InteractionLog, Row
from shelfwise.candidates.neighbours import NeighbourTable
from shelfwise.candidates.popular import Popularity, PopularSource
from shelfwise.candidates.substitutes import SubstitutesSource, category_parents, price_fit
from tests.unit.candidates_fixtures import T0, purchases

# Categories: 1 kitchen/pans, 2 kitchen/knives, 3 bath/soap, 4 decor/art
NAMES = ("", "kitchen/pans", "kitchen/knives", "bath/soap", "decor/art")


def empty_table(n: int) -> NeighbourTable:
    return NeighbourTable(np.full((n, 1), -1, np.int32), np.zeros((n, 1), np.float32))


def table(rows: dict[int, list[tuple[int, float]]], n: int, width: int = 4) -> NeighbourTable:
    items = np.full((n, width), -1, dtype=np.int32)
    scores = np.zeros((n, width), dtype=np.float32)
    for i, nbrs in rows.items():
        for j, (item, score) in enumerate(nbrs):
            items[i, j], scores[i, j] = item, score
    return NeighbourTable(items, scores)


def ctx(*items: int, cart: tuple[int, ...] = ()) -> RecContext:
    return RecContext("product_page", T0, context_items=items, cart_items=cart)


def test_category_parents_make_siblings_of_one_first_segment() -> None:
    parents = category_parents(NAMES)
    assert parents[1] == parents[2] != parents[3] != parents[4]
    assert parents[0] == 0


def test_price_fit_peaks_at_the_anchor_price_and_is_symmetric_in_ratio() -> None:
    fit = price_fit(np.array([10.0, 20.0, 5.0, np.nan]), 10.0, 2.0)
    assert fit[0] == pytest.approx(1.0)
    assert fit[1] == pytest.approx(np.exp(-0.5)) == pytest.approx(fit[2])
    assert fit[3] == pytest.approx(0.7)


class TestSubstitutes:
    # 0 pan EUR 20 (viewed); 1 pan 22; 2 pan 300 (too dear); 3 knife 20 (sibling);
    # 4 soap 20 (unrelated, yet the content table's best neighbour); 5 pan 40, no neighbour.
    category = np.array([1, 1, 1, 2, 3, 1], dtype=np.int32)
    price = np.array([20.0, 22.0, 300.0, 20.0, 20.0, 40.0])
    content = table({0: [(4, 0.9), (1, 0.8), (2, 0.7), (3, 0.6)]}, 6)

    def source(self, **config: float) -> SubstitutesSource:
        return SubstitutesSource(
            self.content,
            empty_table(6),
            self.category,
            NAMES,
            self.price,
            SubstitutesConfig(**config),  # type: ignore[arg-type]
        )

    def test_same_category_in_the_price_band_only(self) -> None:
        got = self.source(sibling_fill=0).propose(ctx(0), 10)
        # the unrelated soap and the EUR 300 pan never come; the pan without a
        # neighbour comes from the category, below the look-alike
        assert got.items.tolist() == [1, 5]
        assert {(r.kind, r.anchor, r.source) for r in got.reasons} == {
            ("similar_to", 0, "substitutes")
        }

    def test_a_small_category_is_helped_by_its_siblings_weighted_down(self) -> None:
        got = self.source(sibling_fill=10).propose(ctx(0), 10)
        assert got.items.tolist()[0] == 1
        assert 3 in got.items.tolist() and 4 not in got.items.tolist()

    def test_nothing_without_a_viewed_product_and_excluded_items_stay_out(self) -> None:
        assert len(self.source().propose(RecContext("product_page", T0), 10).items) == 0
        c = RecContext("product_page", T0, context_items=(0,), exclude=frozenset({1}))
        assert 1 not in self.source(sibling_fill=0).propose(c, 10).items.tolist()

    def test_a_product_without_neighbours_gets_its_own_category(self) -> None:
        got = self.source(sibling_fill=0).propose(ctx(5), 10)
        assert set(got.items.tolist()) == {0, 1}  # pans in the band; the EUR 300 one is not


def _log(rows: list[tuple[str, str, str]]) -> InteractionLog:
    """``(basket, item, kind)`` rows over items A..F."""
    return InteractionLog.from_rows(
        [Row(person="p", item=i, kind=k, at=T0, basket=b) for b, i, k in rows],
        items=("A", "B", "C", "D", "E", "F"),
    )


class TestComplements:
    def test_copurchase_scores_lift_not_raw_counts(self) -> None:
        # B is in every basket (a best seller); C is bought only, and always, with A.
        log = purchases(
            [
                ("o1", "p1", ["A", "B", "C"]),
                ("o2", "p2", ["A", "B", "C"]),
                ("o3", "p3", ["B", "D"]),
                ("o4", "p4", ["B", "E"]),
            ]
        )
        t = fit_copurchase(log, ComplementsConfig(shrink=0.0))
        items, scores = t.of(0)
        assert items.tolist() == [2]  # C; B's lift is 1: no complement
        assert scores[0] == pytest.approx(np.log(2.0))

    def test_category_lift_among_crossing_baskets(self) -> None:
        # categories: A,B 1; C 2; D 3; E,F 4. Baskets cross 1-2 three times, 3-4 once.
        category = np.array([1, 1, 2, 3, 4, 4], dtype=np.int32)
        rows = [
            (f"s{n}", i, "product_view")
            for n, pair in enumerate(["AC", "BC", "AC", "DE"])
            for i in pair
        ]
        lift = fit_category_lift(_log(rows), category, 5, min_support=1)
        assert lift[1, 2] == pytest.approx(lift[2, 1])
        assert lift[1, 2] > 1.0 and lift[3, 4] > 1.0
        assert lift[1, 1] == 0 and lift[1, 3] == 0

    def test_a_category_goes_with_itself_when_baskets_add_two_of_its_items(self) -> None:
        # categories: A,B 1; C 2; D 3; E,F 4. Two sessions cart A and B (category 1),
        # one buys E and F (category 4); C and D are only viewed with the others.
        category = np.array([1, 1, 2, 3, 4, 4], dtype=np.int32)
        rows = [
            ("s1", "A", "add_to_cart"),
            ("s1", "B", "add_to_cart"),
            ("s2", "A", "add_to_cart"),
            ("s2", "B", "purchase"),
            ("s3", "E", "purchase"),
            ("s3", "F", "purchase"),
            ("s4", "C", "product_view"),
            ("s4", "D", "product_view"),
            ("s5", "A", "add_to_cart"),  # one item of a category is no pair
        ]
        lift = fit_category_lift(_log(rows), category, 5, min_support=2)
        assert np.diag(lift).tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]  # E,F: one basket only
        once = fit_category_lift(_log(rows), category, 5, min_support=1)
        assert np.diag(once).tolist() == [0.0, 1.0, 0.0, 0.0, 1.0]  # views never count

    def test_pairs_first_then_partner_categories_cheaper_first(self) -> None:
        # 0 pan EUR 20 (viewed); 1 knife 10 bought with it; partner category 2
        # (knives): 2 knife 15 popular, 3 knife 200 (too dear), 4 knife 30 less popular
        category = np.array([1, 2, 2, 2, 2], dtype=np.int32)
        lift = np.zeros((5, 5), np.float32)
        lift[1, 2] = lift[2, 1] = 2.0
        source = ComplementsSource(
            table({0: [(1, 0.5)]}, 5),
            lift,
            category,
            NAMES,
            np.array([20.0, 10.0, 15.0, 200.0, 30.0]),
            np.array([0.0, 0.5, 1.0, 0.9, 0.2]),
            ComplementsConfig(),
            empty_table(5),
        )
        got = source.propose(ctx(0), 10)
        assert got.items.tolist() == [1, 2, 4]
        kinds = [(r.kind, r.anchor, r.label) for r in got.reasons]
        # A partner category's claim is what its lift counts: visits, not carts.
        assert kinds == [
            ("bought_with", 0, None),
            ("browsed_with", None, "kitchen/knives"),
            ("browsed_with", None, "kitchen/knives"),
        ]

    def _own(self, own: float, goes_with_itself: bool, own_items: int = 40) -> ComplementsSource:
        # 0 pan EUR 20 (viewed); 1 pan 18 and 5 pan 25 (its own category); partner
        # category 2 (knives): 2 knife 15, 3 knife 10; nothing bought together.
        category = np.array([1, 1, 2, 2, 3, 1], dtype=np.int32)
        lift = np.zeros((5, 5), np.float32)
        lift[1, 2] = lift[2, 1] = 2.0
        lift[1, 1] = 1.0 if goes_with_itself else 0.0
        return ComplementsSource(
            empty_table(6),
            lift,
            category,
            NAMES,
            np.array([20.0, 18.0, 15.0, 10.0, 5.0, 25.0]),
            np.array([0.0, 1.0, 0.5, 0.4, 0.9, 0.3]),
            ComplementsConfig(own_category=own, own_items=own_items),
            empty_table(6),
        )

    def test_the_own_category_joins_when_baskets_add_two_of_it(self) -> None:
        got = self._own(1.0, goes_with_itself=True).propose(ctx(0), 10)
        assert set(got.items.tolist()) == {1, 5, 2, 3}  # never the soap, never the anchor
        labels = {int(i): r.label for i, r in zip(got.items, got.reasons, strict=True)}
        assert labels == {
            1: "kitchen/pans",
            5: "kitchen/pans",
            2: "kitchen/knives",
            3: "kitchen/knives",
        }
        kinds = {int(i): r.kind for i, r in zip(got.items, got.reasons, strict=True)}
        # Its own category: carts added two of it; the partner: sessions visited both.
        assert kinds == {1: "goes_with", 5: "goes_with", 2: "browsed_with", 3: "browsed_with"}

    def test_own_items_caps_what_the_own_category_offers(self) -> None:
        got = self._own(1.0, goes_with_itself=True, own_items=1).propose(ctx(0), 10)
        assert set(got.items.tolist()) == {1, 2, 3}  # the more popular pan only

    @pytest.mark.parametrize(("own", "itself"), [(0.0, True), (1.0, False)])
    def test_the_own_category_stays_out_unless_asked_and_shown_by_baskets(
        self, own: float, itself: bool
    ) -> None:
        got = self._own(own, goes_with_itself=itself).propose(ctx(0), 10)
        assert set(got.items.tolist()) == {2, 3}


def test_popular_labels_each_item_with_its_own_category() -> None:
    # The viewed item's category (1) has one popular item; the store's best fill in.
    category = np.array([1, 1, 3, 4], dtype=np.int32)
    pop = Popularity(np.array([0.0, 0.2, 1.0, 0.5]), np.zeros(4, np.int8))
    got = PopularSource(pop, category, NAMES).propose(ctx(0), 3)
    assert got.items.tolist() == [1, 2, 3]
    assert [r.label for r in got.reasons] == ["kitchen/pans", "bath/soap", "decor/art"]
