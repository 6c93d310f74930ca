"""On the simulator, the governed shelfwise pipeline (sources → rules → learned ranker,
trained on the simulated history, served by the store's own request path) earns
more than popularity only, on the same simulated sessions, and never serves a
slate that breaks the rulebook; on product pages it earns more than popularity
and a margin no worse than co-purchase's.

Small on purpose (500 products, 800 people, 35 days: the learned ranker needs a
validation and a training window of 14 days each); benchmarks/online_replay.py
runs the default store for the README figure. The store is the one the preview
tests share (tests/integration/governed.py), trained once per test run; the
replay's brand suppression is saved on it after training, as a merchant saves a
rule (the benchmark saves it before): the rules layer applies it at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shelfwise.config import load_settings
from shelfwise.rules.model import parse_rule
from shelfwise.simulate import SimulationSpec
from shelfwise.simulate.history import simulate
from shelfwise.simulate.placement_replay import PlacementRun, placement_replay
from shelfwise.simulate.replay import (
    Governance,
    OnlineReplay,
    ReplayStore,
    history_popularity,
    replay_against_popularity,
    top_brand,
)
from shelfwise.simulate.world import build_world
from tests.integration.governed import governed_copy

pytestmark = pytest.mark.slow  # the replays: ~10 s of CPU; the store is shared (governed.py)

SPEC = SimulationSpec(seed=7, products=500, people=800, days=36)
HISTORY_DAYS = SPEC.days - 1


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplayStore]:
    """The governed store the preview tests share (tests/integration/governed.py: the
    catalog, the history through ingestion, the rulebook, a bundle with the learned
    ranker), copied; then the replay's brand suppression is saved as a merchant saves
    one after training: rules apply at once, no retraining."""
    began = time.perf_counter()
    tmp: Path = tmp_path_factory.mktemp("replay")
    settings = load_settings(database_url=f"sqlite:///{tmp / 'r.db'}", model_dir=tmp / "models")
    world, shop = governed_copy(tmp_path_factory, settings, SPEC, tmp / "store")
    # The same history again (seeded): the replay needs its events and popularity.
    history = simulate(SPEC, world=build_world(SPEC), days=HISTORY_DAYS).events
    popular = history_popularity(world, history)
    governance = Governance(suppressed_brands=(top_brand(world, popular),))
    saved = {r.id for r in shop.rules.store.list_rules()}
    for body in governance.rules():
        if body["id"] not in saved:
            shop.rules.store.save(parse_rule(body), who="replay", why="the replay's rulebook")
    opened = ReplayStore(
        SPEC, world, history, HISTORY_DAYS, popular, governance, shop,
        time.perf_counter() - began,
    )  # fmt: skip
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def replay(store: ReplayStore) -> OnlineReplay:
    return replay_against_popularity(store, 800, seed=1)


@pytest.fixture(scope="module")
def product_pages(store: ReplayStore) -> PlacementRun:
    return placement_replay(store, "product_similar", 800, seed=1)


def test_the_governed_pipeline_breaks_no_rule(replay: OnlineReplay) -> None:
    governed, popularity = replay.governed.audit, replay.popularity.audit
    assert governed is not None and popularity is not None
    # One empty slate on this traffic, by design: a replacement part viewed with
    # premium decor in the cart; its substitutes are all parts, the pairing rule
    # drops every one, and product_similar has no store-wide fallback.
    assert governed.slates > 500 and governed.empty <= 1
    assert governed.items >= 6 * governed.slates
    assert governed.violation_count == 0, dict(governed.violations)
    # The same check catches what a rule-blind policy serves: the check is live.
    assert popularity.violations["suppressed_brand"] > 0
    assert popularity.violation_count > 100


def test_the_governed_pipeline_earns_more_than_popularity(replay: OnlineReplay) -> None:
    governed, popularity = replay.governed, replay.popularity
    assert governed.audit is not None and popularity.audit is not None
    # The truth's value of the slates served: far apart, no sampling noise in it.
    per_slate = governed.audit.expected_revenue / governed.audit.slates
    assert per_slate > 1.5 * popularity.audit.expected_revenue / popularity.audit.slates
    # What the shoppers then spent, per session (paired sessions).
    r = replay.revenue
    assert r.n == 800 and r.control == pytest.approx(popularity.revenue_per_session)
    assert r.treatment == pytest.approx(governed.revenue_per_session)
    data = replay.as_dict()
    assert data["governed"]["violations"] == 0
    assert data["suppressed_brands"] == list(replay.governance.suppressed_brands)


def test_the_shoppers_spend_more_with_the_governed_pipeline(replay: OnlineReplay) -> None:
    governed, popularity, r = replay.governed, replay.popularity, replay.revenue
    assert governed.revenue_per_session > popularity.revenue_per_session
    # Measured 3.27 against 2.74 (ratio 1.19, 95% CI 0.99-1.40). Slates take part in
    # one page view of three, so the whole session's figure moves far less than the
    # slates' worth (x1.7 above), and on 800 paired sessions its interval is +-0.2
    # wide: the product pages' own money (next test) is where the 1.2x target is held.
    assert r.ratio > 1.1 and r.diff > 0 and r.diff_high > r.diff


def _holds_the_product_page_targets(run: PlacementRun, placement: str) -> None:
    """#17's targets: the truth's expected revenue of the page's slates per session
    >= 1.2x popularity's with the interval above 1, margin no worse than co-purchase."""
    assert run.plan.placement == placement and run.violations["governed"] == 0
    assert run.slates["governed"] == run.slates["popularity"] > 500
    revenue = run.ratio("revenue", "governed", "popularity")
    assert revenue.ratio >= 1.2 and revenue.low > 1.0, revenue
    margin = run.ratio("margin", "governed", "co_purchase")
    assert margin.ratio >= 1.0, margin


def test_product_pages_earn_more_than_popularity_and_keep_co_purchases_margin(
    product_pages: PlacementRun,
) -> None:
    _holds_the_product_page_targets(product_pages, "product_similar")
    # What the shoppers then bought from those slates (a few orders: noisy).
    assert product_pages.per_session("governed", "revenue", sold=True) > 0


@pytest.fixture(scope="module")
def bought_with(store: ReplayStore) -> PlacementRun:
    return placement_replay(store, "product_bought_with", 800, seed=1)


def test_often_bought_with_earns_more_than_popularity_and_keeps_co_purchases_margin(
    bought_with: PlacementRun,
) -> None:
    # The bought_with task's ranker and same-category complements (issue #17): before
    # them this placement earned less than popularity (0.81x on the test store).
    _holds_the_product_page_targets(bought_with, "product_bought_with")


def test_product_page_coherence_is_reported_per_policy(
    product_pages: PlacementRun, bought_with: PlacementRun
) -> None:
    """What each policy's product pages look like to a merchant, on the same views.
    Measured: product_similar 95% same category, price ratio 1.00, top item in 7.9%
    of slates, 79% coverage; product_bought_with 27%, 0.89, 12%, 69%; popularity and
    co-purchase show one item in over 97% of slates."""
    similar, complements = (
        {p: v["coherence"] for p, v in run.as_dict()["policies"].items()}
        for run in (product_pages, bought_with)
    )
    for got in (similar, complements):
        assert set(got) == {
            "governed",
            "co_purchase",
            "popularity",
            "co_purchase_ruled",
            "popularity_ruled",
        }
        assert all(c["slates"] == product_pages.slates["governed"] for c in got.values())
        assert 0.5 <= got["governed"]["median_price_ratio"] <= 2.0
        # no best seller in every slate, unlike the baselines
        assert got["governed"]["top_item_share"] < 0.2
        assert min(c["top_item_share"] for p, c in got.items() if p != "governed") > 0.9
        assert got["governed"]["coverage"] > 4 * got["co_purchase"]["coverage"]
    # substitutes stay in the viewed product's category; complements cross it
    assert similar["governed"]["same_category"] >= 0.6
    assert complements["governed"]["same_category"] < similar["governed"]["same_category"]
