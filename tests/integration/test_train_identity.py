"""Training resolves people through the identity graph, as the request path does."""

from __future__ import annotations

from typing import Any

import numpy as np

from shelfwise.runtime import Runtime
from shelfwise.training.job import train
from tests import shop_fixture


def _ev(eid: str, type_: str, at: str, **kw: Any) -> dict[str, Any]:
    return {"type": type_, "event_id": eid, "occurred_at": f"2024-02-{at}Z", **kw}


def _two_devices() -> list[dict[str, Any]]:
    """One shopper: browses kitchen items on a phone and garden items on a laptop,
    logs in as ``shopper`` on both (each device has its own anonymous id)."""
    phone = {"anonymous_id": "phone-anon", "device_id": "phone", "session_id": "dp"}
    laptop = {"anonymous_id": "laptop-anon", "device_id": "laptop", "session_id": "dl"}
    return [
        _ev("p1", "product_view", "10T10:00:00", product_id="KI6", **phone),
        _ev("p2", "product_view", "10T10:01:00", product_id="KI7", **phone),
        _ev("p3", "login", "10T10:02:00", customer_id="shopper", **phone),
        _ev("l1", "product_view", "12T20:00:00", product_id="GA6", **laptop),
        _ev("l2", "add_to_cart", "12T20:01:00", product_id="GA7", **laptop),
        _ev("l3", "login", "12T20:05:00", customer_id="shopper", **laptop),
        # a stranger nobody linked keeps its own id
        _ev("z1", "product_view", "12T21:00:00", product_id="TO1", anonymous_id="zed"),
    ]


def test_a_shopper_on_two_devices_is_one_person_in_training(runtime: Runtime) -> None:
    shop_fixture.fill(runtime)
    report = runtime.ingestor.ingest(_two_devices())
    assert report.counts()["accepted"] == 7
    train(runtime, force=True)
    bundle = runtime.load_bundle()
    assert bundle is not None
    people = bundle.artifacts.people
    assert "customer:shopper" in people and "zed" in people
    assert not {"phone-anon", "laptop-anon", "shopper", "customer:phone-anon"} & set(people)
    history = bundle.artifacts.history
    row = history.index("customer:shopper")
    assert row is not None
    items = {bundle.artifacts.items[i] for i in np.asarray(history.items[history.row(row)])}
    assert items == {"KI6", "KI7", "GA6", "GA7"}  # both devices' history, one row
    assert bundle.info.counts["identity_links"] >= 4
    # serving resolves a request's id by the same rule, to the trained person
    serve = runtime.recommender.resolve_person
    assert [serve(x) for x in ("laptop-anon", "phone-anon", "shopper", "zed")] == [
        "customer:shopper",
        "customer:shopper",
        "customer:shopper",
        "zed",
    ]


def test_training_resolves_with_the_graph_frozen_at_its_start(runtime: Runtime) -> None:
    runtime.ingestor.ingest(_two_devices()[:3])
    frozen = runtime.identity.snapshot()
    runtime.ingestor.ingest(_two_devices()[3:])
    assert frozen("phone-anon") == frozen("shopper") == "customer:shopper"
    assert frozen("laptop-anon") == "laptop-anon"  # linked after the snapshot
    assert runtime.identity.snapshot()("laptop-anon") == "customer:shopper"
    assert runtime.recommender.resolve_person("laptop-anon") == "customer:shopper"
    assert frozen("device:phone") == "customer:shopper" and frozen("never-seen") == "never-seen"
