"""The slate cache: kept slates equal fresh ones, and anything that changes a slate forgets them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shelfwise.catalog import Product, ProductPatch
from shelfwise.pipeline import Recommender, RecommendRequest
from shelfwise.pipeline.slates import SlateCache
from shelfwise.rules import parse_rule
from shelfwise.runtime import Runtime
from shelfwise.serving.session import SessionRecord
from shelfwise.training.job import train
from tests import shop_fixture
from tests.integration.test_pipeline import (
    MUGS,
    NOW,
    ROWS,
    ask,
    fill_store,
    holdout_experiment,
    ids,
)
from tests.integration.test_pipeline_bundle import trained_shop


@pytest.fixture
def store(runtime: Runtime) -> Runtime:
    return fill_store(runtime)


def lookups(rec: Recommender, result: str, placement: str = "product_similar") -> float:
    got = rec.metrics.registry.get_sample_value(
        "shelfwise_slate_cache_total", {"placement": placement, "result": result}
    )
    return got or 0.0


def served(slate: dict[str, Any]) -> dict[str, Any]:
    """A slate without what is each request's own."""
    return {k: v for k, v in slate.items() if k != "rec_id"}


@pytest.fixture
def twin(store: Runtime) -> Iterator[Recommender]:
    """A second recommender on the same store that never caches."""
    rec = store.build_recommender()
    rec.slates = SlateCache(0)
    yield rec
    rec.clock.close()


def test_a_kept_slate_is_the_fresh_slate_with_its_own_rec_id(
    store: Runtime, twin: Recommender
) -> None:
    rec = store.recommender
    first = ask(store, placement="product_similar", item=["A1"], k=4)
    again = ask(store, placement="product_similar", item=["A1"], k=4)
    assert (lookups(rec, "miss"), lookups(rec, "hit")) == (1.0, 1.0)
    assert again["rec_id"] != first["rec_id"]
    fresh = twin.recommend(RecommendRequest(placement="product_similar", item=("A1",), k=4), NOW)
    assert served(again) == served(first) == served(fresh)
    # Another k, another viewed item: other entries.
    ask(store, placement="product_similar", item=["A1"], k=3)
    ask(store, placement="product_similar", item=["A2"], k=4)
    assert len(rec.slates) == 3 and lookups(rec, "miss") == 3.0


def test_every_request_is_logged_with_its_own_rec_id(store: Runtime) -> None:
    slates = [ask(store, placement="product_similar", item=["A1"], k=4) for _ in range(5)]
    store.decisions.flush()
    logged = store.decisions.recent(placement="product_similar", limit=50)
    assert sorted(d.rec_id for d in logged) == sorted(s["rec_id"] for s in slates)
    assert len({d.rec_id for d in logged}) == 5
    for d in logged:
        assert [i["product_id"] for i in d.items] == ids(slates[0])
        assert d.rulebook_version == "1" and d.mode == "degraded"
    # Traces are kept for every slate here (decision_trace: full): a kept slate's trace
    # is its computation's, naming that request; replays still see every request.
    first = store.decisions.get(slates[0]["rec_id"])
    hit = store.decisions.get(slates[3]["rec_id"])
    assert first is not None and hit is not None and first.trace and hit.trace
    assert "slate_cache" not in first.trace
    assert hit.trace["slate_cache"] == {"computed_by": slates[0]["rec_id"]}
    assert hit.trace["pool"] == first.trace["pool"] and hit.trace["rules"] == first.trace["rules"]
    assert len(store.decisions.recorded_requests(placement="product_similar")) == 5


def test_explain_computes_fresh(store: Runtime) -> None:
    rec = store.recommender
    ask(store, placement="product_similar", item=["A1"], k=4)
    explained = ask(store, placement="product_similar", item=["A1"], k=4, explain=True)
    assert lookups(rec, "bypass") == 1.0 and lookups(rec, "hit") == 0.0
    assert set(explained["trace"]["stages_ms"]) >= {"context", "candidates", "safety", "rank"}
    assert "contributions" in explained["items"][0]


def test_a_stock_change_a_rule_and_a_price_reach_the_very_next_slate(store: Runtime) -> None:
    rec = store.recommender
    assert "A2" in ids(ask(store, placement="product_similar", item=["A1"], k=4))
    assert "A2" in ids(ask(store, placement="product_similar", item=["A1"], k=4))  # kept
    store.catalog.patch("A2", ProductPatch(stock_qty=0))
    assert "A2" not in ids(ask(store, placement="product_similar", item=["A1"], k=4))
    store.catalog.patch("A3", ProductPatch(price=99.0))
    priced = ask(store, placement="product_similar", item=["A1"], k=4)
    assert next(i["price"] for i in priced["items"] if i["product_id"] == "A3") == 99.0
    rule = {"id": "no-nordhem", "type": "suppress", "reason": "dispute", "values": ["Nordhem"]}
    store.rules.store.save(parse_rule(rule), who="test", why="dispute")
    ruled = ask(store, placement="product_similar", item=["A1"], k=4)
    assert "A3" not in ids(ruled) and ruled["rulebook_version"] == "2"
    assert lookups(rec, "hit") == 1.0  # only the second request was served from the cache


def test_a_rule_window_opening_is_seen_by_the_kept_slate(store: Runtime) -> None:
    rule = {
        "id": "no-softloom",
        "type": "suppress",
        "reason": "supplier dispute",
        "values": ["Softloom"],
        "window": {"start": (NOW + timedelta(hours=1)).isoformat()},
    }
    store.rules.store.save(parse_rule(rule), who="test", why="dispute")
    req = RecommendRequest(placement="product_similar", item=("A1",), k=5)
    before = store.recommender.recommend(req, NOW)
    assert "A2" in ids(before)
    during = store.recommender.recommend(req, NOW + timedelta(hours=2))
    assert not {"A2", "A5", "A6"} & set(ids(during))
    assert ids(store.recommender.recommend(req, NOW)) == ids(before)  # kept per window state


def test_personal_requests_never_get_a_kept_slate(store: Runtime) -> None:
    rec = store.recommender
    ask(store, placement="product_similar", item=["A1"], k=4)
    store.sessions.append("s1", [SessionRecord("B1", "product_view", NOW.timestamp())])
    ask(store, placement="product_similar", item=["A1"], k=4, session="s1")
    ask(store, placement="product_similar", item=["A1"], k=4, cart=["B1"])
    assert lookups(rec, "hit") == 0.0 and lookups(rec, "miss") == 1.0
    # A session id without events, or a person nothing is known of: nothing personal.
    ask(store, placement="product_similar", item=["A1"], k=4, session="empty")
    ask(store, placement="product_similar", item=["A1"], k=4, person="stranger")
    assert lookups(rec, "hit") == 2.0


def test_experiment_arms_are_computed_per_request(store: Runtime) -> None:
    holdout_experiment(store)
    for n in range(8):
        slate = ask(store, placement="product_similar", item=["A1"], k=4, person=f"p{n % 4}")
        assert slate["experiment"] is not None
    assert len(store.recommender.slates) == 0
    assert lookups(store.recommender, "miss") == lookups(store.recommender, "hit") == 0.0


def test_exploration_placements_are_never_kept(store: Runtime) -> None:
    for _ in range(3):
        slate = ask(store, placement="home", k=6)  # home explores 10% of its slots
    assert len(store.recommender.slates) == 0
    assert lookups(store.recommender, "hit", "home") == 0.0
    assert any(i["explored"] for i in slate["items"])


def test_a_request_served_again_under_its_rec_id_draws_the_same_exploration(
    store: Runtime,
) -> None:
    rec = store.recommender
    req = RecommendRequest(placement="home", k=6)  # home explores 10% of its slots
    logged = [rec.recommend(req, NOW) for _ in range(12)]
    again = [rec.recommend(req, NOW, record=False, rec_id=s["rec_id"]) for s in logged]
    assert [s["rec_id"] for s in again] == [s["rec_id"] for s in logged]
    assert [ids(s) for s in again] == [ids(s) for s in logged]
    # Under other ids the draws differ: the same slates above are the ids' doing. The ids
    # are fixed here, so the check gives one verdict for the code: home's explored slot
    # here has two picks, about even, and twelve drawn ids would all draw as the logged
    # ones did one run in 4,096.
    others = {
        tuple(ids(rec.recommend(req, NOW, record=False, rec_id=f"other-{n}"))) for n in range(12)
    }
    assert len(others) > 1, others
    with pytest.raises(ValueError, match="not recorded"):
        rec.recommend(req, NOW, rec_id=logged[0]["rec_id"])


@pytest.fixture
def shop(runtime: Runtime) -> Runtime:
    return trained_shop(runtime)


def test_with_a_bundle_history_is_personal_and_a_reload_forgets(shop: Runtime) -> None:
    rec = shop.recommender
    when = shop_fixture.START + timedelta(days=61)
    req = RecommendRequest(placement="product_bought_with", item=("KI1",), k=4)
    first = rec.recommend(req, when)
    assert first["mode"] == "model" and rec.recommend(req, when)["items"] == first["items"]
    assert lookups(rec, "hit", "product_bought_with") == 1.0
    bundle = shop.bundle
    assert bundle is not None
    person = bundle.artifacts.history.people[0]
    rec.recommend(req.model_copy(update={"person": person}), when)
    assert lookups(rec, "hit", "product_bought_with") == 1.0  # history: computed
    train(shop, force=True)
    shop.load_bundle()
    assert shop.bundle is not None and shop.bundle.version != bundle.version
    reloaded = rec.recommend(req, when)
    assert reloaded["model_version"] == shop.bundle.version
    assert lookups(rec, "hit", "product_bought_with") == 1.0  # the new bundle: computed


def with_tools(store: Runtime) -> tuple[set[str], list[str]]:
    """400 garden tools more; the candidates of A1's page and the tools not among them."""
    tools = [
        {"product_id": f"T{n}", "title": f"Tool {n}", "category_path": "garden/tools"}
        for n in range(400)
    ]
    store.catalog.upsert(
        [Product.model_validate({"price": 5.0, "stock_qty": 3, **t}) for t in tools]
    )
    explained = ask(store, placement="product_similar", item=["A1"], k=4, explain=True)
    made_of = {pid for pid, _ in explained["trace"]["pool"]}
    others = [t["product_id"] for t in tools if t["product_id"] not in made_of]
    assert len(made_of) > 10 and len(others) > 100  # popular tools fill up the candidates
    return made_of, others


def test_changes_to_products_a_slate_is_not_made_of_leave_it_kept(store: Runtime) -> None:
    """A live stock feed costs only the slates it touches."""
    made_of, others = with_tools(store)
    rec = store.recommender
    first = ask(store, placement="product_similar", item=["A1"], k=4)
    for n, pid in enumerate(others[:5]):
        store.catalog.patch(pid, ProductPatch(stock_qty=n))
        store.catalog.patch(others[-1 - n], ProductPatch(price=10.0 + n))
        assert served(ask(store, placement="product_similar", item=["A1"], k=4)) == served(first)
    assert (lookups(rec, "miss"), lookups(rec, "hit")) == (1.0, 5.0)
    store.catalog.patch("A1", ProductPatch(price=21.0))  # the viewed product itself
    ask(store, placement="product_similar", item=["A1"], k=4)
    candidate = next(iter(made_of - {"A1", "A2", "A3", "A4", "A5", "A6"}))
    store.catalog.patch(candidate, ProductPatch(stock_qty=0))  # a candidate, maybe not shown
    ask(store, placement="product_similar", item=["A1"], k=4)
    assert (lookups(rec, "miss"), lookups(rec, "hit")) == (3.0, 5.0)


def test_a_pinned_product_that_is_no_candidate_still_comes_and_goes_with_its_stock(
    store: Runtime,
) -> None:
    _, others = with_tools(store)
    tool = others[0]
    pin = {"id": "feature", "type": "pin", "reason": "promo", "product_id": tool, "position": 1}
    store.rules.store.save(parse_rule(pin), who="test", why="promo")
    assert ids(ask(store, placement="product_similar", item=["A1"], k=4))[0] == tool
    assert ids(ask(store, placement="product_similar", item=["A1"], k=4))[0] == tool  # kept
    store.catalog.patch(tool, ProductPatch(stock_qty=0))
    assert tool not in ids(ask(store, placement="product_similar", item=["A1"], k=4))
    assert tool not in ids(ask(store, placement="product_similar", item=["A1"], k=4))  # kept
    store.catalog.patch(tool, ProductPatch(stock_qty=2))
    assert ids(ask(store, placement="product_similar", item=["A1"], k=4))[0] == tool
    assert lookups(store.recommender, "hit") == 2.0


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("ask"), st.sampled_from(["A1", "A2", "A3", "B1"]), st.integers(1, 6)),
        st.tuples(st.just("stock"), st.sampled_from(["A2", "A3", "A5", "B2"]), st.integers(0, 2)),
        st.tuples(st.just("price"), st.sampled_from(["A2", "A3", "B2"]), st.integers(1, 60)),
        st.tuples(st.just("brand"), st.sampled_from(["A1", "A3", "B1"]), st.integers(0, 1)),
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=OPS)
def test_kept_slates_always_equal_fresh_ones(
    store: Runtime, twin: Recommender, ops: list[Any]
) -> None:
    """Whatever changes in between: stock (of a candidate, of the pinned mug that is no
    candidate of a sheet's page), price, a brand (the content source favours the
    viewed product's brand)."""
    pin = {"id": "feature-b2", "type": "pin", "reason": "promo", "product_id": "B2", "position": 1}
    if not any(r.id == "feature-b2" for r in store.rules.store.list_rules()):
        store.rules.store.save(parse_rule(pin), who="test", why="promo")
    rows = {r["product_id"]: r for r in (*ROWS, *MUGS)}
    for op, pid, n in ops:
        if op == "stock":
            store.catalog.patch(pid, ProductPatch(stock_qty=n))
        elif op == "price":
            store.catalog.patch(pid, ProductPatch(price=float(n)))
        elif op == "brand":
            row = {"category_path": "bedding/sheets", "stock_qty": 5, **rows[pid]}
            row["brand"] = ("Softloom", "Nordhem")[n]
            store.catalog.upsert([Product.model_validate(row)])
        else:
            req = RecommendRequest(placement="product_similar", item=(pid,), k=n)
            assert served(store.recommender.recommend(req, NOW)) == served(twin.recommend(req, NOW))


@pytest.mark.parametrize("price", [5e-324, 1e-300, 999_999_999.0])
def test_an_extreme_anchor_price_never_makes_a_score_nan(store: Runtime, price: float) -> None:
    # A price may be any positive number below 1e9: a denormal anchor once overflowed
    # the money term into inf, then NaN (found by the API fuzz).
    store.catalog.patch("A1", ProductPatch(price=price))
    for placement in ("product_similar", "product_bought_with"):
        got = ask(store, placement=placement, item=["A1"], k=4)
        scores = [i["score"] for i in got["items"]]
        assert scores and all(isinstance(s, float) and s == s for s in scores), got
