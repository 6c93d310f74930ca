"""A bundle with the learned ranker: the real app ranks the rule-allowed candidates with it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shelfwise.api import create_app
from shelfwise.candidates import model as candidates_model
from shelfwise.candidates.model import Artifacts
from shelfwise.config import Settings, load_settings
from shelfwise.experiments.assignment import Assignment
from shelfwise.experiments.model import Arm
from shelfwise.pipeline import RecommendRequest
from shelfwise.ranking import RankingSettings
from shelfwise.ranking.training import RankerTrainingConfig
from shelfwise.runtime import Runtime
from shelfwise.training.job import train
from tests import shop_fixture
from tests.conftest import API_KEYS, headers

READ, M = headers("read"), headers("merchandiser")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Runtime]]:
    tmp = tmp_path_factory.mktemp("ranker")
    settings: Settings = load_settings(
        database_url=f"sqlite:///{tmp / 'shelfwise.db'}",
        api_keys=API_KEYS,
        model_dir=tmp / "models",
    )
    settings = settings.model_copy(
        update={"ranking": RankingSettings(compile_model=False, explore_share=0.0)}
    )
    rt = Runtime.open(settings)
    shop_fixture.fill(rt)
    train(rt, force=True, with_ranker=True)
    rt.load_bundle()
    with TestClient(create_app(settings, rt), raise_server_exceptions=False) as c:
        yield c, rt
    rt.close()


def _slate(client: TestClient, query: str) -> dict:  # type: ignore[type-arg]
    r = client.get(f"/v1/recommendations?{query}&explain=true", headers=READ)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def _check_learned(slate: dict, version: str) -> list[str]:  # type: ignore[type-arg]
    assert (slate["mode"], slate["ranker"], slate["model_version"]) == ("model", "learned", version)
    items = slate["items"]
    assert items
    scores = [i["score"] for i in items]
    assert max(scores) > 0
    # Best value first, unless the exposure cap demoted items: they go after every
    # other, those it holds back least first (ranking.exposure.served_order); on this
    # small shop a product page's candidates may all be past their floors.
    if not (slate["trace"]["ranker"].get("exposure") or {}).get("demoted"):
        assert scores == sorted(scores, reverse=True)
    assert all(i["reasons"] and i["reasons"][0]["text"] for i in items)
    assert all(i["contributions"] and "bias" in i["contributions"] for i in items)
    trace = slate["trace"]["ranker"]
    assert trace["kind"] == "learned" and trace["model_version"] == version
    assert trace["objective_version"] == slate["objective_version"]
    assert [t["product_id"] for t in trace["items"]][: len(items)] == [
        i["product_id"] for i in items
    ]
    return [i["product_id"] for i in items]


def test_the_learned_ranker_serves_and_the_rules_still_hold(
    served: tuple[TestClient, Runtime],
) -> None:
    client, rt = served
    assert rt.bundle is not None
    version = rt.bundle.version
    product = _check_learned(_slate(client, "placement=product_similar&item=KI1&k=5"), version)
    assert "KI1" not in product and len(product) == 5
    home = _check_learned(_slate(client, "placement=home&person=c0&k=6"), version)
    assert len(home) == 6

    # An active rule removes the ranker's favourite from both slates.
    banned = [product[0], home[0]]
    rule = {
        "id": "not-these",
        "type": "exclude",
        "reason": "withdrawn",
        "when": {"attr": "product_id", "op": "in", "value": banned},
    }
    r = client.post("/v1/rules", json=rule, headers={**M, "X-Change-Reason": "test"})
    assert r.status_code in (200, 201), r.text
    after = _slate(client, "placement=product_similar&item=KI1&k=5")
    assert not set(banned) & set(_check_learned(after, version))
    home_after = _slate(client, "placement=home&person=c0&k=6")
    assert not set(banned) & set(_check_learned(home_after, version))
    assert home_after["trace"]["drops"].get("not-these", 0) >= 1

    # The decision log keeps the ranker's propensities per item.
    d = client.get(f"/v1/decisions/{home_after['rec_id']}", headers=READ).json()
    assert [i["propensity"] for i in d["items"]] == [1.0] * len(home_after["items"])
    assert d["trace"]["ranker"]["kind"] == "learned"


def test_without_a_ranker_the_blend_ranks(runtime: Runtime) -> None:
    shop_fixture.fill(runtime)
    train(runtime, force=True)
    runtime.load_bundle()
    slate = runtime.recommender.recommend(
        RecommendRequest(placement="product_similar", item=("KI1",), k=3, explain=True)
    )
    assert (slate["mode"], slate["ranker"]) == ("model", "blend")
    assert slate["trace"]["ranker"] == {"kind": "blend"}


class _Arms:
    """Every person in one experiment arm."""

    def __init__(self, arm: Arm) -> None:
        self.arm = arm

    def assign(self, placement: str, person_id: str, now: datetime) -> Assignment:
        return Assignment("ranker-test", 1, self.arm)


@pytest.mark.parametrize(
    ("arm", "expected"),
    [
        (Arm(name="learned", share=0.5), "learned"),
        (Arm(name="off", share=0.5, ranker=False), "blend"),
        (Arm(name="holdout", share=0.5, holdout=True), "blend"),
    ],
)
def test_an_experiment_arm_can_switch_the_ranker_off(
    served: tuple[TestClient, Runtime], arm: Arm, expected: str
) -> None:
    _, rt = served
    rec = rt.recommender
    kept = rec.assigner
    rec.assigner = _Arms(arm)
    try:
        req = RecommendRequest(placement="home", person="c1", k=4)
        slate = rec.recommend(req, record=False)
    finally:
        rec.assigner = kept
    assert slate["ranker"] == expected and slate["experiment"]["arm"] == arm.name


def test_product_bought_with_is_ranked_by_its_own_task(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bundle holds a ranker per training task (``ranker/`` for the home task,
    ``ranker_bought_with/`` for product pages labelled by what was bought after the
    viewed product), and serving ranks each placement with its own. The two tasks
    and the guard train on the same decision times: each prefix's sources are
    fitted once, with the content table the job fitted before them."""
    window_fits: list[object] = []
    fit_all = candidates_model.fit_all

    def counted(*args: Any, **kwargs: Any) -> Artifacts:
        window_fits.append(kwargs.get("content"))
        return fit_all(*args, **kwargs)

    monkeypatch.setattr(candidates_model, "fit_all", counted)
    runtime = Runtime.open(
        settings.model_copy(
            update={"ranking": RankingSettings(compile_model=False, explore_share=0.0)}
        )
    )
    try:
        _serve_each_task(runtime)
    finally:
        runtime.close()
    windows = RankerTrainingConfig().train_windows + 1
    # The guard's pipeline (its prefix and its ranker's windows, one window earlier)
    # and both tasks' windows: at most windows + 2 prefixes, each fitted once
    # (without sharing: 2 x windows + windows + 1).
    assert 0 < len(window_fits) <= windows + 2
    assert all(content is not None for content in window_fits)


def _serve_each_task(runtime: Runtime) -> None:
    shop_fixture.fill(runtime)
    result = train(runtime, force=True, with_ranker=True)
    runtime.load_bundle()
    path = result.bundle.path
    assert (path / "ranker" / "ranker.json").is_file()
    assert (path / "ranker_bought_with" / "ranker.json").is_file()
    metrics = result.bundle.info.metrics
    assert metrics["ranker_bought_with_train_requests"] > 0
    assert metrics["ranker_train_requests"] > 0
    tasks = {}
    for placement, extra in (
        ("product_bought_with", {"item": ("KI1",)}),
        ("product_similar", {"item": ("KI1",)}),
        ("home", {"person": "c0"}),
    ):
        slate = runtime.recommender.recommend(
            RecommendRequest(placement=placement, k=4, explain=True, **extra),  # type: ignore[arg-type]
            record=False,
        )
        assert slate["ranker"] == "learned" and slate["items"], (placement, slate)
        tasks[placement] = slate["trace"]["ranker"]["task"]
    # product_similar shares the bought_with task (placements.yaml says why)
    assert tasks == {
        "product_bought_with": "bought_with",
        "product_similar": "bought_with",
        "home": "requests",
    }


def _trained_with(settings: Settings, placements: Path, task: str) -> Runtime:
    """A runtime serving ``placements`` (a file; the ranker without exploration) whose
    bundle, trained on the shop with its rankers, holds the ``task`` ranker."""
    ranking = RankingSettings(compile_model=False, explore_share=0.0)
    runtime = Runtime.open(
        settings.model_copy(update={"ranking": ranking, "placements_file": placements})
    )
    shop_fixture.fill(runtime)
    result = train(runtime, force=True, with_ranker=True)
    runtime.load_bundle()
    assert (result.bundle.path / f"ranker_{task}" / "ranker.json").is_file()
    assert result.bundle.info.metrics[f"ranker_{task}_train_requests"] > 0
    return runtime


def test_a_cart_placement_that_asks_for_it_is_ranked_by_the_cart_task(
    settings: Settings, tmp_path: Path
) -> None:
    """``ranker: cart`` in placements.yaml: the bundle holds ``ranker_cart/`` (orders
    with one item hidden, ``ranking.dataset.build_cart_set``) and the cart is ranked by it."""
    shipped = resources.files("shelfwise.serving").joinpath("placements.yaml").read_text()
    assert shipped.count("uses_cart: true\n") == 1
    placements = tmp_path / "placements.yaml"
    placements.write_text(
        shipped.replace("uses_cart: true\n", "uses_cart: true\n    ranker: cart\n")
    )
    runtime = _trained_with(settings, placements, "cart")
    try:
        slate = runtime.recommender.recommend(
            RecommendRequest(placement="cart", k=4, explain=True, cart=("KI1",), person="c0"),
            record=False,
        )
        assert slate["ranker"] == "learned" and slate["items"], slate
        assert slate["trace"]["ranker"]["task"] == "cart"
        assert "KI1" not in [i["product_id"] for i in slate["items"]]
    finally:
        runtime.close()


NEW_FOR_YOU = """
  - name: new_for_you
    page: home
    description: New to you.
    sources: {factors: 1.0, cooccurrence: 0.6, popular: 0.2}
    fallback: [popular]
    rule_scope: home
    k: 6
    new_items_only: true
    ranker: new_items
"""


def test_a_new_items_shelf_leaves_out_the_history_and_has_its_own_ranker(
    settings: Settings, tmp_path: Path
) -> None:
    """``new_items_only`` with ``ranker: new_items``: the bundle holds
    ``ranker_new_items/`` (trained on the home requests as they are and with the
    person's history left out) and the shelf, ranked by it, offers nothing the person
    viewed, carted or bought; the home placement still does."""
    shipped = resources.files("shelfwise.serving").joinpath("placements.yaml").read_text()
    placements = tmp_path / "placements.yaml"
    placements.write_text(shipped.rstrip("\n") + "\n" + NEW_FOR_YOU)
    runtime = _trained_with(settings, placements, "new_items")
    try:
        bundle = runtime.bundle
        assert bundle is not None
        blend = bundle.artifacts.blend()
        seen = {bundle.artifacts.items[i] for i in blend.seen("c0")}
        assert len(seen) >= 3
        ask = runtime.recommender.recommend
        shelf = ask(
            RecommendRequest(placement="new_for_you", k=6, explain=True, person="c0"),
            record=False,
        )
        assert shelf["ranker"] == "learned" and len(shelf["items"]) == 6, shelf
        assert shelf["trace"]["ranker"]["task"] == "new_items"
        assert not {i["product_id"] for i in shelf["items"]} & seen
        assert seen <= set(shelf["trace"]["context"]["exclude"])
        home = ask(RecommendRequest(placement="home", k=12, person="c0"), record=False)
        assert {i["product_id"] for i in home["items"]} & seen
    finally:
        runtime.close()
