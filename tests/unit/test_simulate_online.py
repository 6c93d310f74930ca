"""Comparing policies on the simulator: the ground truth ranks them correctly."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx2 as httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shelfwise.contracts.events import parse_event
from shelfwise.simulate import (
    HttpPolicy,
    HttpWriter,
    LiveTraffic,
    OraclePolicy,
    RandomPolicy,
    RequestContext,
    SimulationSpec,
    SplitPolicy,
    World,
    build_world,
    compare_policies,
    popularity_policy,
    sample_requests,
    slate_expected_revenue,
    true_lift,
)
from shelfwise.simulate.defects import Defects, SafariCartLoss
from shelfwise.simulate.policy import parse_slate


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(SimulationSpec(seed=3, products=300, people=200, days=7))


def test_truth_knowing_policy_beats_popularity_beats_random(world: World) -> None:
    requests = sample_requests(world, 1_000, seed=1)
    policies = [
        OraclePolicy(world),
        popularity_policy(world.ids, world.popularity()),
        RandomPolicy(world.ids, seed=2),
    ]
    out = compare_policies(world, policies, requests, seed=4)
    oracle, pop, rnd = (out[n] for n in ("oracle", "popularity", "random"))
    assert oracle.requests == pop.requests == rnd.requests == 1_000
    assert oracle.expected_revenue_per_request > 2 * rnd.expected_revenue_per_request
    assert pop.expected_revenue_per_request > rnd.expected_revenue_per_request
    assert true_lift(out, "oracle", "random") > 1.0
    assert oracle.revenue > rnd.revenue  # what an A/B test would observe agrees
    assert oracle.clicks > rnd.clicks


def test_expected_revenue_is_the_sum_over_positions(world: World) -> None:
    truth, prices = world.truth, world.calendar.price(3)
    items = np.array([5, 17, 42])
    click = truth.click_prob(7, items, 3, "product_page", context_item=9)
    buy = truth.buy_prob(7, items, 3, context_item=9)
    expected = float(np.sum(click * buy * prices[items])) * 1.15
    assert truth.expected_revenue(7, items, 3, "product_page", 9) == pytest.approx(expected)
    assert truth.expected_revenue(7, items[::-1], 3, "product_page", 9) != pytest.approx(expected)
    # The viewed item and cart items are never clicked.
    assert truth.click_prob(7, np.array([9, 5]), 3, "product_page", 9, (5,)).tolist() == [0.0, 0.0]
    best = truth.best_slate(7, 3, "product_page", 5, context_item=9)
    assert truth.expected_revenue(7, best, 3, "product_page", 9) >= truth.expected_revenue(
        7, items, 3, "product_page", 9
    )


def test_slate_value_from_external_ids_matches_the_truth(world: World) -> None:
    req = sample_requests(world, 1, seed=8)[0]
    assert req.item is not None
    slate = OraclePolicy(world).recommend(req.ctx)
    items = np.array([world.index[p] for p in slate.product_ids])
    expected = world.truth.expected_revenue(
        req.person, items, req.day, "product_page", req.item, req.cart
    )
    assert slate_expected_revenue(world, req.ctx, slate.product_ids) == pytest.approx(expected)
    # An unknown id in front keeps its position: the known items move down the page.
    shifted = slate_expected_revenue(world, req.ctx, ["nope", *slate.product_ids])
    assert 0 < shifted < expected
    assert slate_expected_revenue(world, req.ctx, ["nope"]) == 0.0


def test_split_policy_assigns_each_person_one_arm(world: World) -> None:
    split = SplitPolicy(
        "exp1",
        {"a": RandomPolicy(world.ids, 1), "b": popularity_policy(world.ids, world.popularity())},
    )
    arms = Counter(split.arm_of(f"person-{i}") for i in range(2_000))
    assert arms["a"] == pytest.approx(1_000, abs=100)
    ctx = RequestContext("home", datetime(2026, 10, 6, tzinfo=UTC), "anon-1", "s1", k=4)
    first = split.recommend(ctx)
    assert first.experiment_id == "exp1" and first.arm == split.arm_of("anon-1")
    assert all(split.recommend(ctx).arm == first.arm for _ in range(5))
    assert len(first.product_ids) == 4


def test_policies_skip_the_viewed_item_and_the_cart(world: World) -> None:
    pop = popularity_policy(world.ids, world.popularity())
    top = pop.recommend(RequestContext("home", datetime.now(UTC), "a", "s", k=3)).product_ids
    ctx = RequestContext(
        "product_page", datetime.now(UTC), "a", "s", item=top[0], cart=(top[1],), k=3
    )
    slate = pop.recommend(ctx)
    assert top[0] not in slate.product_ids and top[1] not in slate.product_ids
    assert slate.product_ids[0] == top[2]


def test_http_policy_asks_the_server_and_survives_failures() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.params["placement"] == "cart":
            return httpx.Response(500, json={"error": {"code": "internal"}})
        body = {"rec_id": "r-1", "items": [{"product_id": "P000002"}, {"product_id": "P000003"}]}
        return httpx.Response(200, json={**body, "arm": "b", "experiment_id": "e"})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    policy = HttpPolicy("http://shop.test/", "key-123", client=client)
    ctx = RequestContext(
        "product_page",
        datetime.now(UTC),
        "anon-9",
        "s-1",
        customer_id="C1",
        item="P000001",
        cart=("P000004", "P000005"),
        k=2,
    )
    slate = policy.recommend(ctx)
    assert (slate.rec_id, slate.product_ids, slate.arm) == ("r-1", ("P000002", "P000003"), "b")
    req = seen[0]
    assert req.url.path == "/v1/recommendations" and req.headers["x-api-key"] == "key-123"
    assert dict(req.url.params) == {
        "placement": "product_similar",
        "person": "C1",
        "session": "s-1",
        "k": "2",
        "item": "P000001",
        "cart": "P000004,P000005",
    }
    broken = policy.recommend(RequestContext("cart", datetime.now(UTC), "anon-9", "s-1"))
    assert broken.product_ids == () and policy.errors == 1
    assert parse_slate({"rec_id": "x", "items": ["P1", 3, ""]}) is not None
    assert parse_slate({"items": []}) is None
    served = parse_slate(
        {
            "rec_id": "r",
            "items": [{"product_id": "P1"}],
            "experiment": {"experiment_id": "e", "arm": "a"},
        }
    )
    assert served is not None
    assert (served.experiment_id, served.arm) == ("e", "a")


def test_http_writer_can_post_bare_lists_and_reports_failures() -> None:
    bodies: list[Any] = []
    waits: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200 if len(bodies) == 1 else 503, json={"accepted": 2})

    client = httpx.Client(transport=httpx.MockTransport(handler))
    writer = HttpWriter(
        "http://shop.test", "k" * 8, batch_size=2, client=client, events_key=None,
        sleep=waits.append,
    )  # fmt: skip
    report = writer.post_events([{"a": 1}, {"b": 2}, {"c": 3}])
    # The second batch is refused for now (503) every time: sent again three times,
    # after 0.5, 1 and 2 s, then counted as failed.
    assert bodies == [[{"a": 1}, {"b": 2}], *[[{"c": 3}]] * 4]
    assert waits == [0.5, 1.0, 2.0]
    assert report.as_dict() == {
        "batches": 2,
        "sent": 3,
        "failed_batches": 1,
        "failures": {"503": 1},
        "accepted": 2,
    }


def test_http_writer_sends_a_batch_again_only_when_the_server_says_later() -> None:
    answers = iter(
        [
            httpx.ConnectError("refused"),
            httpx.Response(429, headers={"Retry-After": "7"}),
            httpx.Response(200, json={"inserted": 2}),
            httpx.Response(422, json={"error": "bad"}),
        ]
    )
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        got = next(answers)
        if isinstance(got, Exception):
            raise got
        return got

    waits: list[float] = []
    client = httpx.Client(transport=httpx.MockTransport(handler))
    writer = HttpWriter("http://shop.test", "k" * 8, batch_size=2, client=client,
                        sleep=waits.append)  # fmt: skip
    report = writer.put_products([{"p": 1}, {"p": 2}, {"p": 3}])
    # A refused connection, then the rate limit's own wait, then taken; the next
    # batch is invalid (422): the same call would fail again, so it is not retried.
    assert calls == ["PUT"] * 4
    assert waits == [0.5, 7.0]
    assert report.as_dict() == {
        "batches": 2,
        "sent": 3,
        "failed_batches": 1,
        "failures": {"422": 1},
        "inserted": 2,
    }


def test_live_traffic_posts_events_only_when_due(world: World) -> None:
    spec = world.spec.model_copy(
        update={"defects": Defects(safari_cart_loss=SafariCartLoss(share=1.0))}
    )
    live_world = build_world(spec)
    posted: list[dict[str, Any]] = []
    live = LiveTraffic(
        live_world,
        popularity_policy(live_world.ids, live_world.popularity()),
        posted.extend,
        sessions_per_second=2.0,
    )
    now = int(datetime(2026, 10, 12, 12, tzinfo=UTC).timestamp() * 1000)
    live.step(now, 60.0)
    assert all(datetime.fromisoformat(e["occurred_at"]).timestamp() * 1000 <= now for e in posted)
    for k in range(1, 40):  # the next twenty minutes
        live.step(now + k * 30_000, 0.0)
    assert live.posted == len(posted) > 100 and live.errors == 0
    events = [parse_event(e) for e in posted]
    assert {e.type for e in events} >= {"page_view", "product_view", "rec_impression"}
    safari = {e.session_id for e in events if e.platform == "mobile_web" and e.browser == "Safari"}
    assert safari and not [e for e in events if e.type == "add_to_cart" and e.session_id in safari]
    assert all(e.event_id.startswith("live3-") for e in events)


@given(
    k=st.integers(min_value=1, max_value=20),
    item=st.integers(min_value=0, max_value=299),
    cart=st.lists(st.integers(min_value=0, max_value=299), max_size=5),
    which=st.sampled_from(["popularity", "random", "oracle"]),
)
@settings(max_examples=60, deadline=None)
def test_policies_return_at_most_k_distinct_allowed_items(
    world: World, k: int, item: int, cart: list[int], which: str
) -> None:
    policy = {
        "popularity": popularity_policy(world.ids, world.popularity()),
        "random": RandomPolicy(world.ids, seed=k),
        "oracle": OraclePolicy(world),
    }[which]
    anon = world.people.devices[0][0].anonymous_id()
    world.owner[anon] = 0
    ctx = RequestContext(
        "product_page",
        datetime(2026, 10, 7, tzinfo=UTC),
        anon,
        "s",
        item=world.ids[item],
        cart=tuple(world.ids[c] for c in cart),
        k=k,
    )
    slate = policy.recommend(ctx)
    assert 0 < len(slate.product_ids) <= k
    assert len(set(slate.product_ids)) == len(slate.product_ids)
    assert not set(slate.product_ids) & {ctx.item, *ctx.cart}
    assert slate.rec_id
