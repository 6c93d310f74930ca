"""The rules' impact preview replays the logged slates through the pipeline that
served them: its share of changed slates is the share that really changes when the
rule is saved, on the tiny store of test_pipeline (degraded mode, both backends).
The learned ranker's case is tests/integration/test_preview_accuracy.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from shelfwise.errors import InvalidInput
from shelfwise.pipeline import RecommendRequest
from shelfwise.pipeline.preview import MONEY_METHOD, NO_MONEY
from shelfwise.pipeline.replay import NO_BUNDLE, NO_TRACE
from shelfwise.rules import parse_rule
from shelfwise.runtime import Runtime
from shelfwise.serving.session import SessionRecord
from shelfwise.store.types import utcnow
from tests.integration.test_pipeline import NOW, fill_store, holdout_experiment

SOFTLOOM = {"id": "no-softloom", "type": "suppress", "reason": "paused"}
SOFTLOOM |= {"attribute": "brand", "values": ["Softloom"]}
REQUESTS: list[dict[str, Any]] = [
    {"placement": "product_similar", "item": ["A1"], "k": 3},
    {"placement": "product_similar", "item": ["A3"], "k": 3},
    {"placement": "product_similar", "item": ["B1"], "k": 2},
    {"placement": "home", "session": "s1", "k": 3},
    {"placement": "home", "k": 4},
    {"placement": "cart", "cart": ["B1"], "k": 3},
]


@pytest.fixture
def store(runtime: Runtime) -> Runtime:
    rt = fill_store(runtime)
    rt.sessions.append("s1", [SessionRecord("B1", "product_view", NOW.timestamp())])
    return rt


def serve(rt: Runtime, record: bool = True) -> list[tuple[str, str, list[str]]]:
    """(rec_id, placement, product ids) of each request, in order."""
    out = []
    for body in REQUESTS:
        got = rt.recommender.recommend(RecommendRequest.model_validate(body), NOW, record=record)
        out.append((got["rec_id"], body["placement"], [i["product_id"] for i in got["items"]]))
    return out


def test_the_preview_is_the_truth_per_placement(store: Runtime) -> None:
    served = serve(store)
    store.decisions.flush()
    same = store.preview([])
    assert same.requests == 6 and same.slates_changed == 0
    assert same.reproduced == same.comparable == 6  # the replay gives back what was served

    report = store.preview([parse_rule(SOFTLOOM)])
    store.rules.store.save(parse_rule(SOFTLOOM), who="test", why="the truth")
    again = serve(store, record=False)
    truth: dict[str, list[int]] = {}
    for (_, placement, before), (_, _, after) in zip(served, again, strict=True):
        t = truth.setdefault(placement, [0, 0])
        t[0] += before != after
        t[1] += 1
    assert {g.placement: [g.slates_changed, g.slates] for g in report.by_placement} == truth
    assert report.slates_changed == sum(c for c, _ in truth.values()) > 0
    shown = {pid for _, _, items in served for pid in items}
    softloom = {"A1", "A2", "A5", "A6"} & shown
    removed = {i.product_id: i for i in report.removed_most_often}
    assert set(removed) == softloom
    sheet = removed["A2"]
    assert (sheet.title, sheet.brand, sheet.price) == ("Sheet two", "Softloom", 30.0)
    assert sheet.category == "bedding/sheets"
    cats = {(g.placement, g.category) for g in report.by_category}
    assert ("product_similar", "bedding") in cats
    assert report.not_replayed == []
    assert report.money.method == NO_MONEY and report.money.change is None


def bought_first(
    store: Runtime, written: Callable[[str], str], quantity: int
) -> list[tuple[str, str, list[str]]]:
    """Serve, then one order whose line carries the first slate's rec_id and buys its
    first item (its id as the client ``written`` it), ``quantity`` units."""
    served = serve(store)
    rec_id, _, items = served[0]  # product_similar for A1: bought at position 1
    price = 30.0
    store.ingestor.ingest(
        [
            {
                "type": "purchase",
                "event_id": "order-1",
                "occurred_at": (utcnow() - timedelta(hours=1)).isoformat(),
                "anonymous_id": "a1",
                "order_id": "o1",
                "currency": "EUR",
                "revenue": quantity * price,
                "lines": [
                    {
                        "product_id": written(items[0]),
                        "quantity": quantity,
                        "unit_price": price,
                        "rec_id": rec_id,
                    }
                ],
            }
        ],
        source="test",
    )
    store.decisions.flush()
    return served


def firsts_worth(store: Runtime, served: list[tuple[str, str, list[str]]]) -> float:
    price = {p.product_id: p.price or 0.0 for p in store.snapshot.products}
    return sum(price[items[0]] for _, placement, items in served if placement == "product_similar")


def test_money_is_purchase_rate_by_position_times_price(store: Runtime) -> None:
    served = bought_first(store, str, 1)
    report = store.preview([parse_rule(SOFTLOOM)], placement="product_similar")
    m = report.money
    assert m.method == MONEY_METHOD and m.purchases == m.units == 1 and m.currency == "EUR"
    # Rate at position 1 of product_similar: 1 purchase in 3 slates; other positions 0.
    assert m.before == pytest.approx(round(firsts_worth(store, served) / 3, 2))
    assert m.low is not None and m.high is not None and m.change is not None
    assert m.low <= m.change <= m.high and m.low < m.high


def test_a_line_written_differently_counts_with_its_units(store: Runtime) -> None:
    # A client that writes ids in lower case; two units on the line.
    served = bought_first(store, lambda pid: pid.lower(), 2)
    m = store.preview([parse_rule(SOFTLOOM)], placement="product_similar").money
    assert (m.purchases, m.units) == (1, 2)
    assert m.before == pytest.approx(round(2 * firsts_worth(store, served) / 3, 2))


def test_a_slate_whose_bundle_is_gone_is_said_and_left_out(store: Runtime) -> None:
    serve(store)
    store.decisions.flush()
    logged = store.decisions.recent(limit=2)
    store.decisions.record(
        replace(logged[0], rec_id="old-bundle", mode="model", model_version="v-gone")
    )
    store.decisions.record(replace(logged[1], rec_id="no-trace", trace=None))
    store.decisions.flush()
    report = store.preview([parse_rule(SOFTLOOM)])
    assert report.requests == 6
    assert {n.reason: n.slates for n in report.not_replayed} == {NO_BUNDLE: 1, NO_TRACE: 1}


def test_nothing_to_replay_is_a_clear_error(store: Runtime) -> None:
    with pytest.raises(InvalidInput) as e:
        store.preview([parse_rule(SOFTLOOM)])
    assert e.value.code == "preview_no_requests"


def test_slates_of_an_experiment_replay_with_their_arm(store: Runtime) -> None:
    holdout_experiment(store)  # half of product_similar gets the plain baseline
    for n in range(8):
        body = {"placement": "product_similar", "item": ["A1"], "person": f"p{n}", "k": 4}
        store.recommender.recommend(RecommendRequest.model_validate(body), NOW)
    store.decisions.flush()
    arms = {d.arm for d in store.decisions.recent(limit=8)}
    assert arms == {"on", "off"}
    report = store.preview([])
    assert report.not_replayed == []
    assert report.reproduced == report.comparable == 8  # each as its arm served it
