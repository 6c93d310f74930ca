"""Identity on the request path: either device of a logged-in shopper is the same person."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shelfwise.contracts.identity import IdentityGraph, IdentityVersion
from shelfwise.experiments import ExperimentSpec
from shelfwise.experiments.assignment import graph_resolve
from shelfwise.experiments.model import Arm
from shelfwise.experiments.report import readout
from shelfwise.pipeline import RecommendRequest
from shelfwise.runtime import Runtime
from shelfwise.serving.identity import PersonCache
from shelfwise.training.job import train
from tests import shop_fixture

NOW = datetime(2024, 3, 5, tzinfo=UTC)


def _login(runtime: Runtime, anonymous_id: str, session: str, customer: str = "c5") -> None:
    report = runtime.ingestor.ingest(
        [
            {
                "type": "login",
                "event_id": f"login-{anonymous_id}",
                "occurred_at": (NOW - timedelta(hours=1)).isoformat(),
                "anonymous_id": anonymous_id,
                "session_id": session,
                "customer_id": customer,
            }
        ]
    )
    assert report.counts()["accepted"] == 1


def _ask(runtime: Runtime, person: str, now: datetime = NOW) -> dict[str, Any]:
    req = RecommendRequest(placement="email", person=person, k=4)
    return runtime.recommender.recommend(req, now)


@pytest.fixture
def shop(runtime: Runtime) -> Runtime:
    shop_fixture.fill(runtime)
    _login(runtime, "phone-5", "s-phone")
    # Training keys people by the same rule the request path resolves them with.
    train(runtime, force=True, resolve=runtime.identity.person)
    runtime.load_bundle()
    runtime.experiments.create(
        ExperimentSpec(
            experiment_id="email-split",
            name="email split",
            placement="email",
            arms=(Arm(name="a", share=0.5), Arm(name="b", share=0.5)),
            start=NOW - timedelta(days=1),
        )
    )
    return runtime


def test_both_devices_of_a_shopper_get_the_same_person_arm_and_slate(shop: Runtime) -> None:
    laptop_before = _ask(shop, "laptop-5", NOW - timedelta(minutes=1))  # not linked yet
    _login(shop, "laptop-5", "s-laptop")  # the next request must see the link

    phone, laptop = _ask(shop, "phone-5"), _ask(shop, "laptop-5")
    customer = _ask(shop, "c5")
    stranger = _ask(shop, "someone-else")

    def items(slate: dict[str, Any]) -> list[str]:
        return [i["product_id"] for i in slate["items"]]

    def sources(slate: dict[str, Any]) -> set[str]:
        return {r["source"] for i in slate["items"] for r in i["reasons"]}

    assert phone["mode"] == "model"
    assert items(phone) == items(laptop) == items(customer)
    assert phone["experiment"] == laptop["experiment"] == customer["experiment"]
    assignment = shop.assignments.assign("email", "customer:c5", NOW)
    assert assignment is not None and phone["experiment"]["arm"] == assignment.arm.name
    # The shopper's purchase history (trained under the person id) shapes the slate.
    assert "buy_again" in sources(phone)
    assert "buy_again" not in sources(stranger) | sources(laptop_before)
    assert items(laptop_before) != items(laptop)

    shop.decisions.flush()
    newest_last = reversed(shop.decisions.recent(placement="email"))
    logged = {d.request["person"]: d for d in newest_last}
    assert logged["phone-5"].person_id == logged["laptop-5"].person_id == "customer:c5"
    assert logged["someone-else"].person_id == "someone-else"  # never linked: as given
    assert logged["phone-5"].request == {"placement": "email", "person": "phone-5", "k": 4}


def _impression(slate: dict[str, Any], anonymous_id: str) -> dict[str, Any]:
    shown = [
        {"product_id": i["product_id"], "position": n} for n, i in enumerate(slate["items"], 1)
    ]
    return {
        "type": "rec_impression",
        "event_id": f"imp-{slate['rec_id']}",
        "occurred_at": NOW.isoformat(),
        "anonymous_id": anonymous_id,
        "rec_id": slate["rec_id"],
        "placement": "email",
        "items": shown,
        **slate["experiment"],
    }


def test_the_readout_reads_both_devices_as_the_person_in_the_served_arm(shop: Runtime) -> None:
    _login(shop, "laptop-5", "s-laptop")
    phone, laptop = _ask(shop, "phone-5"), _ask(shop, "laptop-5")
    # The storefront logs the impressions with the device's anonymous id only.
    report = shop.ingestor.ingest([_impression(phone, "phone-5"), _impression(laptop, "laptop-5")])
    assert report.counts()["accepted"] == 2
    e = shop.experiments.get("email-split")
    at = NOW + timedelta(hours=1)
    rep = readout(shop.db, e, at=at, resolve=graph_resolve(shop.identity.snapshot()))
    assert rep.srm.counts == {"a": 0, "b": 0, phone["experiment"]["arm"]: 1}
    assert "MULTIPLE_ARMS" not in rep.warnings
    # Without the graph the same shopper would count as two people.
    raw = readout(shop.db, e, at=at)
    assert sum(raw.srm.counts.values()) == 2


class _CountingGraph:
    """An identity graph that counts the store reads the cache makes."""

    def __init__(self, graph: IdentityGraph) -> None:
        self.graph, self.reads = graph, 0

    def person(self, any_id: str, as_of: IdentityVersion | None = None) -> str:
        self.reads += 1
        return self.graph.person(any_id, as_of)

    def profile(self, any_id: str) -> list[str]:
        self.reads += 1
        return self.graph.profile(any_id)

    def merges(self, limit: int = 100) -> list[dict[str, object]]:
        self.reads += 1
        return self.graph.merges(limit)


def test_the_cache_reads_the_graph_only_when_its_merge_log_moved(runtime: Runtime) -> None:
    graph = _CountingGraph(runtime.identity)
    cache = PersonCache(graph)
    seq = IdentityVersion(runtime.identity.count(), 0, 0)
    assert cache.person("phone-9", seq) == "phone-9"
    assert cache.person("laptop-9", seq) == "laptop-9"
    assert cache.person("bystander", seq) == "bystander"
    reads = graph.reads
    for _ in range(50):
        assert cache.person("phone-9", seq) == "phone-9"
    assert graph.reads == reads  # memoised: no store read per request
    for n in range(20):  # never-linked visitors resolve to themselves without a read
        assert cache.person(f"visitor-{n}", seq) == f"visitor-{n}"
    assert graph.reads == reads

    runtime.identity.link("customer:c9", "anonymous:phone-9", reason="login")
    runtime.identity.link("customer:c9", "anonymous:laptop-9", reason="login")
    seq = IdentityVersion(runtime.identity.count(), 0, 0)
    assert cache.person("phone-9", seq) == "customer:c9"
    assert cache.person("laptop-9", seq) == "customer:c9"
    assert cache.person("c9", seq) == "customer:c9"
    reads = graph.reads
    assert cache.person("bystander", seq) == "bystander"  # untouched profile: kept
    assert graph.reads == reads
    assert cache.person("phone-9", None) == "customer:c9"  # store unreachable: memo serves


IDS = st.sampled_from(["42", "C:42", "shop:7", "phone-1", "anonymous:tab-2", "x"])
NODES = st.tuples(st.sampled_from(["customer", "anonymous", "device"]), IDS).map(":".join)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(links=st.lists(st.tuples(NODES, NODES), max_size=6), asked=st.lists(IDS | NODES, max_size=8))
def test_training_and_the_request_path_key_every_id_to_the_same_person(
    runtime: Runtime, links: list[tuple[str, str]], asked: list[str]
) -> None:
    """One rule (``contracts.identity.person_of``) behind training's frozen snapshot and
    the request path's cache, for bare ids, ``kind:value`` nodes and ids holding a colon."""
    graph = runtime.identity
    for a, b in links:
        if a != b:
            graph.link(a, b, reason="test")
    frozen = graph.snapshot()
    cache = PersonCache(graph)
    seq = IdentityVersion(graph.count(), 0, 0)
    for any_id in [*asked, "C:42", "customer:C:42", "phone-1"]:
        assert cache.person(any_id, seq) == frozen(any_id) == graph.person(any_id), any_id


def test_a_customer_id_with_a_colon_is_found_on_the_request_path(runtime: Runtime) -> None:
    runtime.identity.link("customer:C:42", "anonymous:phone-1", reason="login")
    cache = PersonCache(runtime.identity)
    seq = IdentityVersion(runtime.identity.count(), 0, 0)
    assert cache.person("C:42", seq) == cache.person("phone-1", seq) == "customer:C:42"
