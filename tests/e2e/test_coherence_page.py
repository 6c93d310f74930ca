"""Coherence of the product placements on the real server: slates served over HTTP are
read back from the decision log by the API, the CLI and the dashboard's categories
page in headless Chromium, and all three agree with what the test computes itself
from the slates it was served and the catalog it seeded."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest

from shelfwise.config import load_settings
from shelfwise.simulate import CatalogSpec, generate_catalog
from tests.conftest import API_KEYS, KEYS
from tests.e2e.browser import chromium
from tests.e2e.demo_store import seed_demo_store
from tests.e2e.server import json_of, run_cli, running_server, settings_env
from tests.e2e.test_dashboard import SHOTS

PLACEMENTS = ("product_similar", "product_bought_with")


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, dict[str, str], dict[str, list[tuple[str, list[dict[str, Any]], bool]]]]]:
    """The real server on the demo store after 12 product pages per product placement
    (every third with a person): (base URL, environment, the slates as served)."""
    tmp = tmp_path_factory.mktemp("coherence")
    settings = load_settings(
        database_url=f"sqlite:///{tmp / 'shelfwise.db'}", api_keys=API_KEYS, model_dir=tmp / "m"
    )
    seed_demo_store(settings)
    env = settings_env(settings)
    products = [p for p in generate_catalog(CatalogSpec(n_products=300, seed=7)) if p.price]
    pages = [p.product_id for p in products[::25]][:12]
    slates: dict[str, list[tuple[str, list[dict[str, Any]], bool]]] = {}
    with running_server(env) as base, httpx.Client(base_url=base, timeout=30) as c:
        for placement in PLACEMENTS:
            for i, pid in enumerate(pages):
                personal = i % 3 == 0
                params = {"placement": placement, "item": pid}
                if personal:
                    params["person"] = f"shopper-{i}"
                r = c.get("/v1/recommendations", params=params, headers={"X-API-Key": KEYS["read"]})
                assert r.status_code == 200, r.text
                slates.setdefault(placement, []).append((pid, r.json()["items"], personal))
        yield base, env, slates


def _expected(slates: list[tuple[str, list[dict[str, Any]], bool]]) -> dict[str, Any]:
    """The measures computed here, from the served JSON and the seeded catalog."""
    catalog = {p.product_id: p for p in generate_catalog(CatalogSpec(n_products=300, seed=7))}
    shown = [(anchor, it) for anchor, items, _ in slates for it in items]
    same = sum(
        catalog[it["product_id"]].category_path == catalog[anchor].category_path
        for anchor, it in shown
    )
    ratios = [catalog[it["product_id"]].price / catalog[anchor].price for anchor, it in shown]  # type: ignore[operator]
    per_item = Counter(it["product_id"] for _, items, _ in slates for it in items)
    top = max(per_item.values())
    return {
        "slates": len(slates),
        "items_shown": len(shown),
        "same_category": same / len(shown),
        "median_price_ratio": statistics.median(ratios),
        "top_item_share": top / len(slates),
        "personal_claims": sum(
            r["kind"]
            in ("for_you", "because_you_viewed", "because_you_bought", "buy_again", "session")
            for _, items, personal in slates
            if not personal
            for it in items
            for r in it["reasons"]
        ),
        "top_items": {p for p, n in per_item.items() if n == top},
    }


def test_api_and_cli_read_what_was_served(served: Any) -> None:
    base, env, slates = served
    with httpx.Client(base_url=base, timeout=30, headers={"X-API-Key": KEYS["read"]}) as c:
        rep = c.get("/v1/monitoring/coherence", params={"range": "24h"}).json()
        unknown = c.get("/v1/monitoring/coherence", params={"placement": "nope"})
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "placement_not_found"
        only = c.get(
            "/v1/monitoring/coherence",
            params={"range": "24h", "placement": "product_similar", "by_category": "false"},
        ).json()
    overall = {r["placement"]: r for r in rep["rows"] if r["category"] is None}
    assert set(overall) == set(PLACEMENTS) and rep["truncated"] == []
    for placement in PLACEMENTS:
        want, got = _expected(slates[placement]), overall[placement]
        assert got["slates"] == want["slates"] == 12
        assert got["items_shown"] == want["items_shown"] > 0
        assert got["same_category"] == pytest.approx(want["same_category"], abs=1e-4)
        assert got["median_price_ratio"] == pytest.approx(want["median_price_ratio"], abs=1e-4)
        assert got["top_item_share"] == pytest.approx(want["top_item_share"], abs=1e-4)
        assert got["top_item"] in want["top_items"]
        assert got["personal_claims"] == want["personal_claims"]
        per_cat = [
            r for r in rep["rows"] if r["placement"] == placement and r["category"] is not None
        ]
        assert sum(r["slates"] for r in per_cat) == 12
        assert sum(r["items_shown"] for r in per_cat) == want["items_shown"]
    assert only["rows"] == [overall["product_similar"]]

    cli = json_of(run_cli(["monitoring", "coherence", "--range", "24h", "--json"], env))
    assert cli["rows"] == [r for r in rep["rows"] if r["category"] is None]
    text = run_cli(["monitoring", "coherence", "--range", "24h"], env).stdout
    assert "Product placements' coherence" in text and "product_similar" in text
    bad = run_cli(["monitoring", "coherence", "--placement", "nope"], env)
    assert bad.returncode == 2 and "placement_not_found" in bad.stderr


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def _cells(page: Any, key: str) -> dict[str, str]:
    return {
        what: page.get_by_test_id(f"coherence-{what}-{key}").get_attribute("data-value")
        for what in ("slates", "same", "price", "top", "top-share", "coverage", "claims")
    }


@pytest.mark.browser
def test_the_categories_page_shows_the_api_s_coherence(browser: Any, served: Any) -> None:
    base, _, _ = served
    with httpx.Client(base_url=base, timeout=30, headers={"X-API-Key": KEYS["read"]}) as c:
        rows = c.get("/v1/monitoring/coherence", params={"range": "24h"}).json()["rows"]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{base}/dashboard/login")
    page.fill("#api_key", KEYS["merchandiser"])
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/dashboard")

    def check(row: dict[str, Any]) -> None:
        key = f"{row['placement']}-{row['category'] or 'all'}"
        got = _cells(page, key)
        assert int(got["slates"]) == row["slates"]
        assert float(got["same"]) == pytest.approx(row["same_category"], abs=1e-4)
        assert float(got["price"]) == pytest.approx(row["median_price_ratio"], abs=1e-4)
        assert got["top"] == row["top_item"]
        assert float(got["top-share"]) == pytest.approx(row["top_item_share"], abs=1e-4)
        assert float(got["coverage"]) == pytest.approx(row["coverage"], abs=1e-4)
        assert int(got["claims"]) == row["personal_claims"]
        title = page.get_by_test_id(f"coherence-top-{key}").inner_text()
        assert title == row["top_item_title"]

    page.goto(f"{base}/dashboard/categories?range=24h")
    table = page.get_by_test_id("coherence")
    overall = [r for r in rows if r["category"] is None]
    # all placements: one row each, no category rows
    assert table.locator("tr").count() == 1 + len(overall) == 3
    for row in overall:
        check(row)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "categories-coherence.png"), full_page=True)

    page.select_option("select[name=placement]", "product_similar")
    page.wait_for_url("**placement=product_similar**")
    similar = [r for r in rows if r["placement"] == "product_similar"]
    assert table.locator("tr").count() == 1 + len(similar)
    for row in similar:
        check(row)
    assert "one row per category of the viewed product" in page.content().lower()
