from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from shelfwise.candidates.base import Proposal, Reason, RecContext, SessionEvent
from shelfwise.candidates.blend import CandidateBlend, blend
from shelfwise.candidates.buyagain import BuyAgainSource, fit_cycles
from shelfwise.candidates.config import (
    BuyAgainConfig,
    ContentConfig,
    EventWeights,
    FactorsConfig,
    PlacementChain,
    PopularConfig,
    SessionConfig,
    SourcesConfig,
)
from shelfwise.candidates.content import ContentSource, fit_content
from shelfwise.candidates.factors import fit_factors
from shelfwise.candidates.history import PersonHistory
from shelfwise.candidates.neighbours import NeighbourTable, gather
from shelfwise.candidates.popular import PopularSource, fit_popularity
from shelfwise.candidates.session import SessionSource
from shelfwise.catalog.model import Product
from tests.unit.candidates_fixtures import ABC, T0, purchases

A, B, C, D, E = range(5)


def table(rows: dict[int, list[tuple[int, float]]], n: int = 5, width: int = 3) -> NeighbourTable:
    items = np.full((n, width), -1, dtype=np.int32)
    scores = np.zeros((n, width), dtype=np.float32)
    for i, nbrs in rows.items():
        for j, (item, score) in enumerate(nbrs):
            items[i, j], scores[i, j] = item, score
    return NeighbourTable(items, scores)


def test_gather_sums_over_anchors_and_names_the_heaviest_anchor() -> None:
    t = table({A: [(C, 0.5), (D, 0.2)], B: [(C, 0.4), (A, 0.9)]})
    got = gather(t, np.array([A, B]), np.array([1.0, 2.0]))
    assert got.items.tolist() == [C, D]  # anchors A and B never come out
    assert got.scores == pytest.approx([0.5 + 0.8, 0.2])
    assert got.anchors.tolist() == [B, A]  # B weighs 2, A lists D alone
    got = gather(t, np.array([A, B]), np.array([1.0, 2.0]), exclude=np.array([C]))
    assert got.items.tolist() == [D]


def test_content_neighbours_follow_title_category_and_brand() -> None:
    products = [
        Product(product_id="a", title="red wool scarf", category_path="acc/scarves", brand="Knit"),
        Product(product_id="b", title="blue wool scarf", category_path="acc/scarves", brand="Knit"),
        Product(product_id="c", title="steel frying pan", category_path="kitchen/pans"),
        Product(product_id="d", title="cast iron frying pan", category_path="kitchen/pans"),
        Product(product_id="e", title="wool hat", category_path="acc/hats", brand="Knit"),
    ]
    t = fit_content(products, np.full(5, np.nan), ContentConfig(width=4))
    assert t.of(0)[0].tolist()[:2] == [1, 4]  # the other scarf, then the wool hat of the same brand
    assert t.of(2)[0].tolist()[0] == 3
    # A never-bought item gets candidates too (content needs no interactions).
    log = purchases(ABC)
    source = ContentSource(t, PersonHistory.fit(log, EventWeights().array(), 30.0))
    got = source.propose(RecContext("product_page", T0, context_items=(4,)), 2)
    assert got.items.tolist() == [0, 1] and got.reasons[0].kind == "similar_to"


def test_buy_again_prefers_the_item_that_is_due() -> None:
    # p1 buys A every 10 days and B every 40 days; both last bought on day 40.
    baskets = [
        ("o1", "p1", ["A", "B"]),
        ("o2", "p1", ["A"]),
        ("o3", "p1", ["A"]),
        ("o4", "p1", ["A"]),
        ("o5", "p1", ["A", "B"]),
    ]
    log = purchases(baskets, days=[0, 10, 20, 30, 40])
    cycles = fit_cycles(log) / 86400
    assert cycles[A] == pytest.approx(10) and cycles[B] == pytest.approx(40)
    history = PersonHistory.fit(log, EventWeights().array(), 30.0)
    source = BuyAgainSource(history, cycles * 86400, np.ones(5), BuyAgainConfig())
    ten_days_on = T0 + timedelta(days=50)
    assert source.propose(RecContext("home", ten_days_on, person_id="p1"), 5).items.tolist() == [
        A,
        B,
    ]
    got = source.propose(RecContext("home", ten_days_on, person_id="p1", exclude=frozenset({A})), 5)
    assert got.items.tolist() == [B] and got.reasons[0].kind == "buy_again"


def test_popular_is_per_category_with_labels() -> None:
    log = purchases(ABC)
    pop = fit_popularity(log, PopularConfig(), EventWeights())
    assert int(np.argmax(pop.scores)) == A
    category = np.array([1, 1, 2, 2, 2], dtype=np.int32)
    source = PopularSource(pop, category, ("", "x", "y"))
    got = source.propose(RecContext("product_page", T0, context_items=(C,)), 4)
    assert set(got.items.tolist()[:3]) == {C, D, E}  # C's category first
    assert got.items.tolist()[3] == A  # then the store's best
    assert got.reasons[0].label == "y" and not got.reasons[0].fallback
    assert all(r.kind in ("popular_in", "trending_in", "seasonal") for r in got.reasons)


def test_session_weights_recent_events_more() -> None:
    t = table({A: [(C, 1.0)], B: [(D, 1.0)]})
    events = (SessionEvent(A, "product_view", T0), SessionEvent(B, "product_view", T0))
    source = SessionSource(t, SessionConfig(decay_per_step=0.5), EventWeights())
    got = source.propose(RecContext("home", T0, session=events), 5)
    assert got.items.tolist() == [D, C]  # B is the latest event
    assert got.scores == pytest.approx([1.0, 0.5])
    assert got.reasons[0].anchor == B


def test_blend_weights_and_fallback_slots_say_so() -> None:
    r = Reason("x", "for_you")
    p1 = Proposal("one", np.array([A, B]), np.array([2.0, 1.0]), (r, r))
    p2 = Proposal("two", np.array([B, C]), np.array([4.0, 4.0]), (r, r))
    got = blend([(p1, 1.0), (p2, 0.5)], 10)
    assert got.items.tolist() == [A, B, C]
    assert got.scores == pytest.approx([1.0, 1.0, 0.5])

    class Fixed:
        def __init__(self, name: str, p: Proposal) -> None:
            self.name, self.p = name, p

        def propose(self, ctx: RecContext, k: int) -> Proposal:
            keep = [i for i, item in enumerate(self.p.items) if item not in ctx.exclude]
            return Proposal(
                self.name,
                self.p.items[keep],
                self.p.scores[keep],
                tuple(self.p.reasons[i] for i in keep),
            )

    fallback_reason = Reason("popular", "popular_in")
    sources = {
        "cooccurrence": Fixed("cooccurrence", p1),
        "popular": Fixed(
            "popular", Proposal("popular", np.array([A, E, D]), np.ones(3), (fallback_reason,) * 3)
        ),
    }
    config = SourcesConfig(placements={"x": PlacementChain(blend={"cooccurrence": 1.0})})
    got = CandidateBlend(sources, config).propose(RecContext("x", T0, exclude=frozenset({D})), 4)
    assert got.items.tolist() == [A, B, E]
    assert [r.fallback for r in got.reasons] == [False, False, True]
    assert got.scores[2] < got.scores[1]


def test_als_factors_are_the_same_on_one_thread_and_on_every_core() -> None:
    """``threads`` only changes how long a fit takes (docs/sizing.md)."""
    log = purchases(ABC * 3, days=list(range(12)))
    kinds = SourcesConfig().events
    one, every = (
        fit_factors(log, FactorsConfig(factors=8, iterations=5), kinds, 30.0, threads=t)
        for t in (1, 0)
    )
    assert one.items.shape == (5, 8) and np.abs(one.items).max() > 0
    np.testing.assert_array_equal(one.items, every.items)
    np.testing.assert_array_equal(one.people, every.people)
    with pytest.raises(ValueError):
        SourcesConfig(threads=-1)
    # a bundle's config hash names what its sources depend on, not how fast they fit
    assert SourcesConfig(threads=0).config_hash() == SourcesConfig().config_hash()
    assert SourcesConfig(factors=FactorsConfig(iterations=3)).config_hash() != (
        SourcesConfig().config_hash()
    )
