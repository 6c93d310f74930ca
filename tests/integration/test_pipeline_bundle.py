"""With a trained model bundle: model mode, bundle-space mapping, reload swaps it in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shelfwise.catalog import Product
from shelfwise.pipeline import Pipeline, RecommendRequest, Trace
from shelfwise.pipeline.bundles import BundleView
from shelfwise.pipeline.encode import Served, slate_json
from shelfwise.runtime import Runtime
from shelfwise.training.job import train
from tests import shop_fixture

NOW = datetime(2024, 3, 5, tzinfo=UTC)


@pytest.fixture
def shop(runtime: Runtime) -> Runtime:
    return trained_shop(runtime)


def trained_shop(runtime: Runtime) -> Runtime:
    """The taste-group shop with a bundle trained on it (no learned ranker) and loaded."""
    shop_fixture.fill(runtime)
    train(runtime, force=True)
    runtime.load_bundle()
    return runtime


def test_a_loaded_bundle_serves_in_model_mode(shop: Runtime) -> None:
    req = RecommendRequest(placement="product_bought_with", item=("KI1",), k=4, explain=True)
    slate = shop.recommender.recommend(req, NOW)
    assert slate["mode"] == "model"
    assert slate["model_version"] == shop.bundle.version  # type: ignore[union-attr]
    got = [i["product_id"] for i in slate["items"]]
    assert len(got) == 4 and "KI1" not in got
    assert all(p.startswith("KI") for p in got[:2])  # bought with kitchen items
    assert slate["items"][0]["reasons"][0]["source"] == "complements"  # the chain's source
    assert shop.recommender.bundle_age_seconds() >= 0


def test_bundle_view_maps_a_reordered_catalog(shop: Runtime) -> None:
    bundle = shop.bundle
    assert bundle is not None
    view = BundleView(bundle, shop.snapshot)
    assert view.identity
    # A product added after training, sorting first: a fresh worker's vocabulary shifts.
    shop.catalog.upsert([Product(product_id="AA0", title="New", price=3.0, stock_qty=2)])
    shop.snapshot.load()
    moved = BundleView(bundle, shop.snapshot)
    assert not moved.identity
    assert moved.from_bundle[0] == shop.snapshot.vocab[bundle.artifacts.items[0]]
    req = RecommendRequest(placement="product_bought_with", item=("KI1",), k=3)
    slate = shop.recommender.recommend(req, NOW)
    assert all(i["product_id"].startswith("KI") for i in slate["items"][:2])
    anchors = {r["anchor"] for i in slate["items"] for r in i["reasons"]}
    assert anchors <= {None, *shop.snapshot.ids}


@pytest.mark.parametrize(
    ("placement", "item"), [("product_bought_with", ("KI1",)), ("home", ()), ("cart", ())]
)
def test_the_offline_pipeline_gives_the_served_slate(
    shop: Runtime, placement: str, item: tuple[str, ...]
) -> None:
    """Evaluation runs the program the store serves: Pipeline.offline over the same
    snapshot, bundle and rulebook gives the served items, scores, reasons and versions."""
    cart = ("KI2",) if placement == "cart" else ()
    req = RecommendRequest(placement=placement, item=item, cart=cart, person="c1", k=5)
    served = shop.recommender.recommend(req, NOW, record=False)
    bundle, book = shop.bundle, shop.rules.current()
    assert bundle is not None
    pipeline = Pipeline.offline(shop.snapshot, bundle, rulebook=book)
    spot = shop.placements.get(placement)
    ctx = pipeline.context(req, spot, [], NOW, "c1", Trace(enabled=False))
    slate = pipeline.run(ctx, spot, k=5)
    answer = slate_json(slate, Served(served["rec_id"], shop.placements.version))
    assert answer == served
    assert [s.product_id for s in slate.items] == [i["product_id"] for i in served["items"]]
    assert len(slate.items) == 5 and slate.versions.model == bundle.version
