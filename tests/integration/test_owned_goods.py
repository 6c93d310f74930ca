"""A shopper is not offered the one-off goods they own: on every placement, a known
person's past purchases whose repeat rate is below ``buy_again.min_repeat`` are left
out of the candidates (and said so in the trace), what the store's shoppers re-buy
stays, and an anonymous request is served as before. Both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shelfwise.candidates.config import BuyAgainConfig, SourcesConfig
from shelfwise.catalog.model import Product
from shelfwise.contracts.events import OrderLine, Purchase
from shelfwise.contracts.eventstore import EventStore
from shelfwise.dashboard.panels.decisions import decisions_panel
from shelfwise.dashboard.slots import SlotParams
from shelfwise.pipeline import RecommendRequest
from shelfwise.runtime import Runtime
from shelfwise.training.job import train

START = datetime(2024, 1, 1, tzinfo=UTC)
NOW = START + timedelta(days=40)
PRICES = {"P1": 40.0, "P2": 35.0, "P3": 30.0, "K1": 8.0, "K2": 9.0, "T1": 12.0}
CATEGORY = {"P": "kitchen/pans", "K": "pantry/coffee", "T": "kitchen/towels"}
# Shrunk toward their category's with 1 purchase's worth: the pans (each bought once)
# rate about 0.03, the coffee everyone buys on three days about 0.66.
CONFIG = SourcesConfig(buy_again=BuyAgainConfig(repeat_prior=1.0))


def _products() -> list[Product]:
    return [
        Product(
            product_id=p,
            title=f"item {p}",
            category_path=CATEGORY[p[0]],
            price=price,
            currency="EUR",
            stock_qty=10,
        )
        for p, price in PRICES.items()
    ]


def _order(n: int, day: int, items: list[str]) -> Purchase:
    return Purchase(
        event_id=f"o{n}-{day}",
        occurred_at=START + timedelta(days=day, hours=n),
        anonymous_id=f"anon{n}",
        customer_id=f"c{n}",
        session_id=f"s{n}-{day}",
        order_id=f"o{n}-{day}",
        lines=tuple(OrderLine(product_id=p, quantity=1, unit_price=PRICES[p]) for p in items),
        currency="EUR",
        revenue=sum(PRICES[p] for p in items),
    )


def _history() -> list[Purchase]:
    """Twelve shoppers: each buys a pair of pans once (P1 with P2, or P1 with P3), a
    towel once, and coffee K1 on three days; half of them also K2 on two days."""
    out = []
    for n in range(12):
        out.append(_order(n, 2, ["P1", "P2" if n % 2 == 0 else "P3", "T1"]))
        for day in (5, 15, 25):
            out.append(_order(n, day, ["K1", "K2"] if n % 2 and day > 5 else ["K1"]))
    return out


@pytest.fixture
def shop(runtime: Runtime) -> Runtime:
    runtime.catalog.upsert(_products())
    EventStore(runtime.db).append(_history())
    runtime.snapshot.load()
    train(runtime, config=CONFIG, force=True, min_people=1)
    runtime.load_bundle()
    return runtime


def _ask(shop: Runtime, **body: Any) -> dict[str, Any]:
    req = RecommendRequest.model_validate({"k": 5, "explain": True, **body})
    return shop.recommender.recommend(req, NOW)


def _ids(slate: dict[str, Any]) -> list[str]:
    return [i["product_id"] for i in slate["items"]]


def test_the_one_off_goods_a_shopper_owns_are_left_out_on_every_placement(shop: Runtime) -> None:
    bundle = shop.bundle
    assert bundle is not None
    repeat = dict(zip(bundle.artifacts.items, bundle.artifacts.repeat.round(3), strict=True))
    assert repeat["P2"] < 0.1 and repeat["T1"] < 0.1 and repeat["K1"] > 0.5  # min_repeat 0.1

    # c0 bought P1, P2 and T1 once (owned) and K1 on three days (re-bought: it stays).
    owned = ["P1", "P2", "T1"]
    home = _ask(shop, placement="home", person="c0")
    assert not set(_ids(home)) & set(owned)
    assert "K1" in _ids(home)  # what the store re-buys is still offered again
    k1 = home["items"][_ids(home).index("K1")]
    assert k1["reasons"][0]["source"] == "buy_again"
    assert home["trace"]["owned"] == owned  # why a product they bought is not shown
    assert set(owned) <= set(home["trace"]["context"]["exclude"])
    for body in (
        {"placement": "cart", "cart": ["K2"]},
        {"placement": "product_bought_with", "item": ["P1"]},
        {"placement": "product_similar", "item": ["P3"]},
        {"placement": "email"},
    ):
        slate = _ask(shop, person="c0", **body)
        assert not set(_ids(slate)) & set(owned), body
        assert slate["trace"]["owned"] == owned

    # Anonymous, and for a shopper who does not own it, P2 is bought with P1.
    assert "P2" in _ids(_ask(shop, placement="product_bought_with", item=["P1"]))
    assert "P2" in _ids(_ask(shop, placement="product_bought_with", item=["P1"], person="c1"))
    anonymous = _ask(shop, placement="cart", cart=["K2"])
    assert anonymous["trace"]["owned"] == []
    assert set(owned) & set(_ids(anonymous))  # the same cart offers them to a stranger


def test_owned_goods_are_left_out_in_a_worker_whose_vocabulary_moved(shop: Runtime) -> None:
    # A product added since training, sorting first: this worker's indices shift.
    shop.catalog.upsert([Product(product_id="A0", title="new", price=3.0, stock_qty=2)])
    shop.snapshot.load()
    view = shop.recommender.bundle_view()
    assert view is not None and not view.identity
    home = _ask(shop, placement="home", person="c0")
    assert home["trace"]["owned"] == ["P1", "P2", "T1"]
    assert not {"P1", "P2", "T1"} & set(_ids(home)) and "K1" in _ids(home)


def test_the_preview_replays_the_slates_of_a_shopper_who_owns_goods(shop: Runtime) -> None:
    for body in (
        {"placement": "home", "person": "c0"},
        {"placement": "cart", "cart": ["K2"], "person": "c0"},
        {"placement": "product_bought_with", "item": ["P1"], "person": "c0"},
        {"placement": "product_bought_with", "item": ["P1"]},
    ):
        _ask(shop, **body)
    shop.decisions.flush()
    report = shop.preview([])
    assert report.requests == 4 and report.slates_changed == 0
    assert report.reproduced == report.comparable == 4


def test_the_decision_viewer_says_which_owned_goods_were_left_out(shop: Runtime) -> None:
    rec_id = _ask(shop, placement="cart", cart=["K2"], person="c0")["rec_id"]
    shop.decisions.flush()
    params = SlotParams(NOW - timedelta(days=1), NOW, {"rec_id": rec_id})
    (candidates,) = [t for t in decisions_panel(shop, params).tables if t.testid == "candidates"]
    assert candidates.note.endswith(
        "Left out because the shopper owns them (bought before; this store's shoppers "
        "rarely buy them again): P1, P2, T1."
    )
