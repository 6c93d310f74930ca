"""The dashboard in headless Chromium: sign in, load every page, charts render,
numbers match the API, screenshots saved under artifacts/screenshots/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from shelfwise.config import Settings
from tests.conftest import KEYS, service_missing
from tests.e2e.demo_store import seed_demo_store
from tests.e2e.server import running_server, settings_env

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
# page path, whether it draws charts
PAGES = (
    ("", True),
    ("/categories", True),
    ("/alerts", True),
    ("/drift", True),
    ("/signals", False),
    ("/experiments", False),
    ("/rules", False),
    ("/decisions", False),
)

pytestmark = pytest.mark.browser


@pytest.fixture
def browser() -> Iterator[Any]:
    if shutil.which("chromium") is None and not Path(CHROMIUM).exists():
        service_missing("Chromium (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        service_missing("the playwright package")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def server(sqlite_settings: Settings) -> Iterator[str]:
    seed_demo_store(sqlite_settings)
    with running_server(settings_env(sqlite_settings)) as base:
        yield base


def _plotted(page: Any) -> list[int]:
    """Traces per rendered plotly chart on the page."""
    result: list[int] = page.eval_on_selector_all(
        ".js-plotly-plot", "els => els.map(e => (e.data || []).length)"
    )
    return result


def test_every_page_renders_and_agrees_with_the_api(browser: Any, server: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{server}/dashboard")
    assert "/dashboard/login" in page.url
    page.fill("#api_key", "wrong-key-123")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text() == "That key is not valid."
    page.fill("#api_key", KEYS["merchandiser"])
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/dashboard")
    cookie = next(c for c in page.context.cookies() if c["name"] == "shelfwise_session")
    assert cookie["httpOnly"] is True
    assert page.evaluate("document.cookie") == ""

    for path, charts in PAGES:
        page.goto(f"{server}/dashboard{path}?range=14d")
        page.wait_for_load_state("networkidle")
        name = path.strip("/") or "overview"
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        traces = _plotted(page)
        if charts:
            assert traces and all(n > 0 for n in traces), (path, traces)
        else:
            assert page.get_by_test_id("not-available").is_visible()

    api = httpx.Client(base_url=server, headers={"X-API-Key": KEYS["read"]}, timeout=30)
    metrics = api.get("/v1/monitoring/metrics?by=placement&range=14d").json()
    page.goto(f"{server}/dashboard?range=14d")
    shown = float(page.get_by_test_id("total-revenue").get_attribute("data-value"))
    assert shown == pytest.approx(metrics["total"]["revenue"])
    assert page.get_by_test_id("total-revenue").inner_text().startswith("€")
    for row in metrics["rows"]:
        cell = page.get_by_test_id(f"revenue-{row['placement']}")
        assert float(cell.get_attribute("data-value")) == pytest.approx(row["revenue"])
        assert cell.inner_text() == f"€{row['revenue']:,.2f}"
    assert (
        int(page.get_by_test_id("total-orders").get_attribute("data-value"))
        == metrics["total"]["orders"]
    )

    (alert,) = api.get("/v1/alerts").json()["alerts"]
    page.goto(f"{server}/dashboard/alerts")
    risk = page.get_by_test_id(f"risk-{alert['alert_id']}")
    assert risk.inner_text() == "€1,234.50" and float(risk.get_attribute("data-value")) == 1234.5
    page.click("text=View series")
    page.wait_for_load_state("networkidle")
    assert "placement=home_top_picks" in page.url and "category=bedding" in page.url
    assert page.get_by_test_id("chart-series").is_visible()
    page.screenshot(path=str(SHOTS / "alert-series.png"), full_page=True)

    page.click("text=Sign out")
    page.goto(f"{server}/dashboard/alerts")
    assert "/dashboard/login" in page.url
    api.close()
