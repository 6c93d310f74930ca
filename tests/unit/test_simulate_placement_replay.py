"""Per-placement replay pieces: paired random streams, cart pages, the co-purchase
baseline, what a page's slates sold, the paired bootstrap."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from shelfwise.simulate import RequestContext, SimulationSpec, World, build_world
from shelfwise.simulate.experiment import BestOfCategories, NoSlate
from shelfwise.simulate.placement_replay import (
    CoPurchasePolicy,
    RuleAbiding,
    bootstrap_ratio,
    page_money,
)
from shelfwise.simulate.policy import Slate, popularity_policy
from shelfwise.simulate.replay import Governance, Replay, draw_traffic, replay_sessions


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(SimulationSpec(seed=4, products=400, people=300, days=4))


class ShowsTheViewed:
    """A product-page slate of the viewed item alone: nobody clicks it (the truth
    never clicks the item on screen); nothing elsewhere."""

    name = "viewed"

    def recommend(self, ctx: RequestContext) -> Slate:
        return Slate("rec-viewed", (ctx.item,) if ctx.item else ())


def _plain(events: list[dict[str, Any]]) -> list[tuple[object, ...]]:
    """The shoppers' own events (no impressions), without the runner's event numbering."""
    keys = ("type", "session_id", "occurred_at", "product_id", "revenue")
    return [tuple(e.get(k) for k in keys) for e in events if e["type"] != "rec_impression"]


def test_a_slate_nobody_clicks_changes_nothing_else_in_the_session(world: World) -> None:
    traffic = draw_traffic(world, 200, seed=5, first_day=1, days=2)
    shown = replay_sessions(world, ShowsTheViewed(), traffic, "same", paired=True)
    nothing = replay_sessions(world, NoSlate(), traffic, "same", paired=True)
    impressions = [e for e in shown.events if e["type"] == "rec_impression"]
    assert len(impressions) > 20
    assert not any(e["type"] == "rec_click" for e in shown.events)
    # The slate's draws come from their own stream: every later page, cart and order
    # of the session is the same as without any slate.
    assert _plain(shown.events) == _plain(nothing.events)
    assert np.array_equal(shown.revenue, nothing.revenue) and shown.revenue.sum() > 0
    # On one stream per session the slate's draws shift everything after it.
    one = replay_sessions(world, ShowsTheViewed(), traffic, "same")
    assert _plain(one.events) != _plain(nothing.events)


def test_cart_pages_show_cart_slates_only_to_shoppers_with_a_cart(world: World) -> None:
    traffic = draw_traffic(world, 300, seed=6, first_day=1, days=2)
    run = replay_sessions(world, BestOfCategories(world, ["bedding"]), traffic, cart_pages=True)
    carts: dict[str, set[str]] = {}
    seen: Counter[str] = Counter()
    for e in run.events:  # time-ordered: the cart as it is when the slate is shown
        sid = e["session_id"]
        if e["type"] == "add_to_cart":
            carts.setdefault(sid, set()).add(e["product_id"])
        elif e["type"] == "remove_from_cart":
            carts.get(sid, set()).discard(e["product_id"])
        elif e["type"] == "rec_impression":
            seen[e["placement"]] += 1
            has_cart = bool(carts.get(sid))
            assert (e["placement"] == "cart") == has_cart, e
    assert seen["cart"] > 5 and seen["product_page"] > 5
    plain = replay_sessions(world, BestOfCategories(world, ["bedding"]), traffic)
    assert not any(e["type"] == "rec_impression" and e["placement"] == "cart" for e in plain.events)


def _order(n: int, *items: str) -> dict[str, Any]:
    lines = [{"product_id": p, "quantity": 1, "unit_price": 1.0} for p in items]
    return {"type": "purchase", "order_id": f"o{n}", "lines": lines}


def test_co_purchase_ranks_what_is_bought_with_the_anchors_then_popularity(world: World) -> None:
    a, b, c, d, e = world.ids[:5]
    history = [_order(1, a, b), _order(2, a, b, c), _order(3, a, c), _order(4, b, d)]
    history += [_order(5, a, c)]
    scores = np.zeros(world.catalog.n)
    scores[[7, 6, 5]] = [3.0, 2.0, 1.0]  # the store's best sellers: items 7, 6, 5
    policy = CoPurchasePolicy(world, history, popularity_policy(world.ids, scores))
    ctx = RequestContext(placement="product_page", now=world.spec.start, anonymous_id="x",
                         session_id="s", item=a, k=5)  # fmt: skip
    # c (3 orders with a) before b (2); then the best sellers.
    assert policy.recommend(ctx).product_ids == (c, b, world.ids[7], world.ids[6], world.ids[5])
    # The cart's items are anchors too (counts summed) and never shown.
    cart = RequestContext(placement="cart", now=world.spec.start, anonymous_id="x",
                          session_id="s", item=a, cart=(b,), k=3)  # fmt: skip
    assert policy.recommend(cart).product_ids == (c, d, world.ids[7])
    home = RequestContext(placement="home", now=world.spec.start, anonymous_id="x",
                          session_id="s", k=2)  # fmt: skip
    assert policy.recommend(home).product_ids == (world.ids[7], world.ids[6])
    assert e not in policy.recommend(ctx).product_ids


def test_a_pages_money_is_what_its_slates_sold(world: World) -> None:
    p, q = world.ids[0], world.ids[1]
    events: list[dict[str, Any]] = [
        {"type": "rec_impression", "rec_id": "r1", "placement": "product_page"},
        {"type": "rec_impression", "rec_id": "r2", "placement": "home"},
        {
            "type": "purchase",
            "session_id": "x-s0000002",
            "lines": [
                {"product_id": p, "quantity": 2, "unit_price": 10.0, "rec_id": "r1"},
                {"product_id": q, "quantity": 1, "unit_price": 7.0, "rec_id": "r2"},
                {"product_id": q, "quantity": 1, "unit_price": 5.0},
            ],
        },
    ]
    run = Replay("p", np.zeros(3), np.zeros(3, dtype=np.int64), events)
    money = page_money(world, run, 3, "product_page")
    assert money.revenue.tolist() == [0.0, 20.0, 0.0]
    cost = float(world.catalog.cost[0])
    assert money.margin.tolist() == pytest.approx([0.0, 20.0 - 2 * cost, 0.0])
    home = page_money(world, run, 3, "home")
    assert home.revenue.tolist() == [0.0, 7.0, 0.0]


def test_the_bootstrap_ratio_of_a_scaled_copy_is_exact_and_covers_the_truth() -> None:
    rng = np.random.default_rng(1)
    c = rng.exponential(2.0, size=400)
    exact = bootstrap_ratio(1.5 * c, c)
    assert exact.ratio == pytest.approx(1.5) and exact.low == pytest.approx(1.5)
    assert exact.high == pytest.approx(1.5)
    t = 1.3 * c + rng.normal(0.0, 0.5, size=400)
    r = bootstrap_ratio(t, c)
    assert r.low < r.ratio < r.high and r.low < 1.3 < r.high
    assert r.high - r.low < 0.2
    assert bootstrap_ratio(t, c) == r  # seeded
    zero = bootstrap_ratio(np.ones(5), np.zeros(5))
    assert np.isnan(zero.ratio) and np.isnan(zero.low)


def test_a_rule_blind_policy_under_the_rules_serves_its_own_order_less_what_they_forbid(
    world: World,
) -> None:
    cat = world.catalog
    brand = str(cat.records[0]["brand"])
    rules = Governance(suppressed_brands=(brand,), max_sla_days=5)
    scores = np.arange(cat.n, 0, -1, dtype=np.float64)  # the catalog's order
    popular = popularity_policy(world.ids, scores)
    ruled = RuleAbiding(popular, world, rules)
    assert ruled.name == "popularity_ruled"
    checked = 0
    for day in range(world.spec.days):
        ctx = RequestContext(placement="home", now=world.spec.start + timedelta(days=day),
                             anonymous_id="x", session_id="s", k=8)  # fmt: skip
        blind = popular.recommend(replace(ctx, k=40)).product_ids
        got = ruled.recommend(ctx).product_ids
        assert rules.violations(world, ctx, got) == []
        assert len(got) == 8
        # Its own order, less the forbidden: every item it passed over breaks a rule
        # (a brand, slow shipping, stock, or a variant of an item already kept).
        assert list(got) == [p for p in blind if p in got]
        passed = blind[: blind.index(got[-1]) + 1]
        for p in passed:
            if p not in got:
                kept_before = [q for q in got if blind.index(q) < blind.index(p)]
                assert rules.violations(world, ctx, [*kept_before, p])  # (theirs: none)
                checked += 1
    assert checked >= 8  # the rules did forbid items the blind list held
