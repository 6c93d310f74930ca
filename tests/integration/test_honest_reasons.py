"""Every reason a slate shows is true for its request, checked against the trace.

A small shop with a trained bundle and the learned ranker; hypothesis draws
requests (placement, a person or nobody, a viewed product, a cart) and every
shown reason is checked: nothing personal without a person or a session; a
category in a reason is the item's own; a backfilled item says so and comes
from a fallback source; the first reason names a source the trace says proposed
candidates; "bought together with X" names a viewed or carted X that was bought
in one basket with the item; "similar to X" on product_similar names the viewed
product and shares its category or a sibling.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shelfwise.config import Settings, load_settings
from shelfwise.contracts.events import Purchase
from shelfwise.monitoring.coherence import PERSONAL_KINDS
from shelfwise.pipeline import RecommendRequest
from shelfwise.ranking import RankingSettings
from shelfwise.runtime import Runtime
from shelfwise.training.job import train
from tests import shop_fixture
from tests.conftest import API_KEYS

CATEGORY_KINDS = frozenset({"popular_in", "trending_in", "seasonal", "goes_with", "browsed_with"})
PRODUCTS = [p.product_id for p in shop_fixture.products()]
CATEGORY = {p.product_id: p.category_path for p in shop_fixture.products()}
NOW = shop_fixture.START + timedelta(days=61)


def _bought_together() -> set[tuple[str, str]]:
    pairs: set[tuple[str, str]] = set()
    for e in shop_fixture.events():
        if isinstance(e, Purchase):
            ids = [line.product_id for line in e.lines]
            pairs |= {(a, b) for a in ids for b in ids if a != b}
    return pairs


BOUGHT = _bought_together()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    tmp = tmp_path_factory.mktemp("honest")
    base: Settings = load_settings(
        database_url=f"sqlite:///{tmp / 'shelfwise.db'}",
        api_keys=API_KEYS,
        model_dir=tmp / "models",
    )
    rt = Runtime.open(
        base.model_copy(update={"ranking": RankingSettings(compile_model=False, explore_share=0.0)})
    )
    shop_fixture.fill(rt)
    train(rt, force=True, with_ranker=True)
    rt.load_bundle()
    yield rt
    rt.close()


requests = st.builds(
    dict,
    placement=st.sampled_from(["product_similar", "product_bought_with", "cart", "home"]),
    person=st.sampled_from([None, "c0", "c5", "stranger"]),
    item=st.sampled_from([*PRODUCTS, "NO-SUCH"]),
    cart=st.lists(st.sampled_from(PRODUCTS), max_size=3, unique=True),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(r=requests)
def test_every_reason_is_true_for_its_request(shop: Runtime, r: dict[str, object]) -> None:
    placement = shop.placements.get(str(r["placement"]))
    item = (str(r["item"]),)
    cart = tuple(r["cart"]) if placement.uses_cart else ()  # type: ignore[call-overload]
    req = RecommendRequest(
        placement=placement.name,
        person=r["person"],  # type: ignore[arg-type]
        item=item,
        cart=cart,
        k=6,
        explain=True,
    )
    slate = shop.recommender.recommend(req, NOW, record=False)
    proposed = {s.removesuffix(" (fallback)") for s in slate["trace"]["candidates"] or {}}
    asked = {*item, *cart}
    for shown in slate["items"]:
        pid = shown["product_id"]
        reasons = shown["reasons"]
        assert reasons, pid
        first = reasons[0]
        assert first["source"] in proposed | {"rules"} or first["fallback"], (pid, first, proposed)
        for reason in reasons:
            kind = reason["kind"]
            if req.person is None and req.session is None:
                assert kind not in PERSONAL_KINDS, (pid, reason)
            if kind in CATEGORY_KINDS and reason["label"] is not None:
                assert reason["label"] == CATEGORY[pid], (pid, reason)
            if reason["fallback"] and reason["source"] not in ("ranker",):
                assert reason["source"] in placement.fallback, (pid, reason)
            if kind in ("bought_with", "often_bought_with"):
                assert reason["anchor"] in asked, (pid, reason)
                assert (reason["anchor"], pid) in BOUGHT, (pid, reason)
            if kind == "similar_to" and placement.name == "product_similar":
                assert reason["anchor"] in asked, (pid, reason)
                assert CATEGORY[pid].split("/")[0] == CATEGORY[reason["anchor"]].split("/")[0]


def test_an_unknown_viewed_product_gets_a_documented_empty_slate(shop: Runtime) -> None:
    for placement in ("product_similar", "product_bought_with"):
        req = RecommendRequest(placement=placement, item=("NO-SUCH",), k=6, explain=True)
        slate = shop.recommender.recommend(req, NOW, record=False)
        assert slate["items"] == []
        assert any("NO-SUCH" in note for note in slate["trace"]["notes"])


def test_product_similar_stays_in_the_viewed_category(shop: Runtime) -> None:
    for pid in PRODUCTS[::5]:
        req = RecommendRequest(placement="product_similar", item=(pid,), k=5)
        slate = shop.recommender.recommend(req, NOW, record=False)
        assert slate["items"], pid
        assert all(i["category"] == CATEGORY[pid] for i in slate["items"]), pid
