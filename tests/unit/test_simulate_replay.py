"""Online replay pieces: the independent rulebook check, fixed traffic, paired intervals,
and serving through the experiment assignment."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shelfwise.experiments.assignment import arm_for
from shelfwise.experiments.model import Arm, ExperimentSpec
from shelfwise.experiments.synthetic import stored
from shelfwise.simulate import RequestContext, SimulationSpec, World, build_world
from shelfwise.simulate.experiment import (
    BestOfCategories,
    ExperimentPolicy,
    NoSlate,
    outcomes,
    person_key,
    true_effects,
    true_person,
)
from shelfwise.simulate.replay import (
    AuditedPolicy,
    Governance,
    draw_traffic,
    history_popularity,
    paired_ratio,
    replay_sessions,
)


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(SimulationSpec(seed=4, products=400, people=300, days=4))


def _ctx(world: World, item: str | None = None, cart: tuple[str, ...] = ()) -> RequestContext:
    anon = world.people.devices[0][0].anonymous_id()
    world.owner[anon] = 0
    return RequestContext(
        placement="product_page" if item else "home",
        now=world.spec.start + timedelta(days=1, hours=12),
        anonymous_id=anon,
        session_id="s",
        item=item,
        cart=cart,
    )


def _first(world: World, test: object) -> str:
    for i, record in enumerate(world.catalog.records):
        if test(i, record):  # type: ignore[operator]
            return world.ids[i]
    raise AssertionError("no such product")


def test_every_rule_of_the_governance_is_checked_on_its_own(world: World) -> None:
    c = world.catalog
    gov = Governance(suppressed_brands=("Tidy",))
    fine = _first(
        world,
        lambda i, r: (
            r["brand"] != "Tidy"
            and r["shipping_sla_days"] <= 10
            and c.stock[i] > 0
            and not r["tags"]
            and not str(r["category_path"]).startswith("decor/premium")
        ),
    )
    assert gov.violations(world, _ctx(world), [fine]) == []
    slow = _first(world, lambda i, r: r["shipping_sla_days"] > 10 and r["brand"] != "Tidy")
    tidy = _first(world, lambda i, r: r["brand"] == "Tidy" and r["shipping_sla_days"] <= 10)
    gone = _first(world, lambda i, r: c.stock[i] == 0)
    groups = {int(g): [world.ids[i] for i in np.flatnonzero(c.group == g)] for g in c.group}
    pair = next(ids for ids in groups.values() if len(ids) > 1)
    assert gov.violations(world, _ctx(world), [slow]) == ["slow_shipping"]
    assert gov.violations(world, _ctx(world), [tidy]) == ["suppressed_brand"]
    assert "out_of_stock" in gov.violations(world, _ctx(world), [gone])
    assert gov.violations(world, _ctx(world), [fine, fine]) == ["duplicate", "variant_group"]
    assert "variant_group" in gov.violations(world, _ctx(world), pair[:2])
    assert "variant_group" in gov.violations(world, _ctx(world, item=pair[0]), pair[1:2])
    assert "viewed_item" in gov.violations(world, _ctx(world, item=fine), [fine])
    assert gov.violations(world, _ctx(world, cart=(fine,)), [fine]) == ["in_cart"]
    assert gov.violations(world, _ctx(world), ["NOT-A-PRODUCT"]) == ["unknown_product"]
    premium = _first(world, lambda i, r: str(r["category_path"]).startswith("decor/premium"))
    part = _first(
        world,
        lambda i, r: "replacement-part" in r["tags"] and r["brand"] != "Tidy" and c.stock[i] > 0,
    )
    assert "pairing" in gov.violations(world, _ctx(world, item=premium), [part])
    assert "pairing" not in gov.violations(world, _ctx(world, item=fine), [part])
    # The rule bodies a store gets: every check above has its rule (stock is built in).
    assert {r["id"] for r in gov.rules()} == {
        "no-slow-shipping",
        "premium-decor-no-parts",
        "paused-brands",
        "one-per-variant-group",
    }


def test_replays_are_fixed_by_the_seed_and_leave_the_shoppers_as_they_were(world: World) -> None:
    traffic = draw_traffic(world, 150, seed=3, first_day=2, days=2)
    assert list(traffic.starts) == sorted(traffic.starts)
    assert (traffic.starts >= world.start_ms + 2 * 86_400_000).all()
    before = [[d.anonymous_ids[:] for d in ds] for ds in world.people.devices]
    policy = AuditedPolicy(BestOfCategories(world, ["bedding"]), world, Governance())
    a = replay_sessions(world, policy, traffic)
    b = replay_sessions(world, BestOfCategories(world, ["bedding"]), traffic)
    assert [[d.anonymous_ids for d in ds] for ds in world.people.devices] == before
    assert np.array_equal(a.revenue, b.revenue) and a.revenue.sum() > 0
    assert [e["occurred_at"] for e in a.events] == sorted(e["occurred_at"] for e in a.events)
    assert policy.audit.slates > 0 and policy.audit.expected_revenue > 0
    assert len({e["session_id"] for e in a.events}) == len(traffic)
    # Another policy: the same people at the same times, other slates.
    c = replay_sessions(world, NoSlate(), traffic)
    assert not any(e["type"] == "rec_impression" for e in c.events)

    def who(events: list[dict[str, object]]) -> dict[str, object]:
        return {str(e["session_id"]).rsplit("-", 1)[1]: e["anonymous_id"] for e in events}

    assert who(a.events) == who(c.events) and len(who(a.events)) == len(traffic)


def test_paired_ratio_by_hand() -> None:
    t = np.array([3.0, 0.0, 5.0, 2.0])
    c = np.array([1.0, 0.0, 4.0, 1.0])
    r = paired_ratio(t, c)
    assert (r.treatment, r.control, r.ratio, r.diff) == (2.5, 1.5, 2.5 / 1.5, 1.0)
    d = t - c  # 2, 0, 1, 1: sd = sqrt(2/3)
    half = 1.959964 * np.sqrt(np.var(d, ddof=1) / 4)
    assert r.diff_low == pytest.approx(1.0 - half, rel=1e-5)
    assert r.diff_high == pytest.approx(1.0 + half, rel=1e-5)
    assert r.low < r.ratio < r.high


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0, 100), min_size=3, max_size=40), st.floats(1.0, 3.0))
def test_a_paired_ratio_of_a_scaled_copy_is_exact(xs: list[float], k: float) -> None:
    c = np.array(xs) + 1.0
    r = paired_ratio(k * c, c)
    assert r.ratio == pytest.approx(k)
    assert r.high - r.low == pytest.approx(0.0, abs=1e-6)


def test_popularity_from_history_counts_units_sold(world: World) -> None:
    a, b = world.ids[5], world.ids[9]
    events = [
        {"type": "purchase", "lines": [{"product_id": a, "quantity": 2}]},
        {"type": "purchase", "lines": [{"product_id": b, "quantity": 1}, {"product_id": "x"}]},
        {"type": "product_view", "product_id": b},
    ]
    policy = history_popularity(world, events)
    assert policy.ranked[:2] == [a, b]


def test_experiment_policy_serves_by_the_shelfwise_hash(world: World) -> None:
    spec = ExperimentSpec(
        experiment_id="sim-test",
        name="t",
        arms=(Arm(name="holdout", share=0.5, holdout=True), Arm(name="bedding", share=0.5)),
        start=world.spec.start,
    )
    e = stored(spec)
    bedding = BestOfCategories(world, ["bedding"])
    policy = ExperimentPolicy([e], {"bedding": bedding}, true_person(world))
    arms = set()
    for person in range(40):
        anon = world.people.devices[person][0].anonymous_id()
        world.owner[anon] = person
        ctx = RequestContext("home", world.spec.start + timedelta(hours=1), anon, f"s{person}")
        slate = policy.recommend(ctx)
        arm = arm_for(e, person_key(world, anon)).name
        assert (slate.experiment_id, slate.arm) == ("sim-test", arm)
        assert bool(slate.product_ids) == (arm == "bedding")
        cats = {
            str(world.catalog.records[world.index[p]]["category_path"]) for p in slate.product_ids
        }
        assert all(c.startswith("bedding/") for c in cats)
        arms.add(arm)
    assert arms == {"holdout", "bedding"}
    with pytest.raises(ValueError, match="unknown categories"):
        BestOfCategories(world, ["furniture"])


def test_true_effects_of_a_policy_against_nothing(world: World) -> None:
    traffic = draw_traffic(world, 300, seed=8, first_day=1, days=3)
    start = world.spec.start + timedelta(days=1)
    bedding = replay_sessions(world, BestOfCategories(world, ["bedding"]), traffic)
    nothing = replay_sessions(world, NoSlate(), traffic)
    t = outcomes(world, bedding.events, start, world.spec.end)
    h = outcomes(world, nothing.events, start, world.spec.end)
    assert t.persons == h.persons and h.attributed == 0 and t.attributed > 0
    assert t.revenue["all"] == pytest.approx(bedding.revenue.sum())
    truth = true_effects(t, h)
    assert truth.lift["bedding"] > 0
    assert truth.incrementality == pytest.approx(
        (t.purchases["all"] - h.purchases["all"]) / t.attributed
    )
    with pytest.raises(ValueError, match="same people"):
        true_effects(t, outcomes(world, nothing.events, start, world.spec.end, persons=set()))
