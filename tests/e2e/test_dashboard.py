"""The monitoring API, Prometheus, the CLI and the dashboard on the real server with a
demo store; the dashboard also in headless Chromium (screenshots under
artifacts/screenshots/). The tests share one seeded server and run in order:
the last one re-evaluates the alerts."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from typer.testing import CliRunner

from shelfwise.cli.main import app as cli
from shelfwise.config import load_settings
from tests.conftest import API_KEYS, KEYS, service_missing
from tests.e2e.demo_store import seed_demo_store
from tests.e2e.server import json_of, run_cli, running_server, settings_env

PAGES = ("", "/categories", "/alerts", "/drift", "/signals", "/experiments", "/rules", "/decisions")
CHARTED = {"", "/categories", "/alerts", "/drift"}
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


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A seeded SQLite store served by the real server: (base URL, environment).

    The store queries run on both backends in tests/integration; here the
    server, the CLI, the sign-in and the pages are under test.
    """
    tmp = tmp_path_factory.mktemp("demo")
    settings = load_settings(
        database_url=f"sqlite:///{tmp / 'shelfwise.db'}", api_keys=API_KEYS, model_dir=tmp / "m"
    )
    seed_demo_store(settings)
    env = settings_env(settings)
    with running_server(env) as base:
        yield base, env


def test_every_command_has_help() -> None:
    runner = CliRunner()
    for args in (
        ["alerts", "--help"],
        ["alerts", "list", "--help"],
        ["alerts", "evaluate", "--help"],
        ["monitoring", "metrics", "--help"],
        ["monitoring", "drift", "--help"],
    ):
        r = runner.invoke(cli, args)
        assert r.exit_code == 0 and "Usage" in r.output, args


def test_api_prometheus_and_cli_agree(demo: tuple[str, dict[str, str]]) -> None:
    base, env = demo
    read = {"X-API-Key": KEYS["read"]}
    with httpx.Client(base_url=base, timeout=30) as c:
        assert c.get("/v1/alerts").status_code == 401
        alerts = c.get("/v1/alerts", headers=read).json()["alerts"]
        assert [(a["alert_id"], a["at_risk_per_hour"]) for a in alerts] == [
            ("demo-alert-1", 1234.5)
        ]
        m = c.get("/v1/monitoring/metrics?by=placement&range=14d", headers=read).json()
        placements = {r["placement"]: r for r in m["rows"]}
        assert set(placements) == {"home_top_picks", "product_similar", "cart_addons"}
        assert m["total"]["revenue"] == pytest.approx(sum(r["revenue"] for r in m["rows"]))
        assert m["total"]["impressions"] > 0 and m["serving"] == []
        bad = c.get("/v1/monitoring/metrics?by=colour", headers=read)
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_dimension"
        drift = c.get("/v1/monitoring/drift?range=24h", headers=read).json()
        assert {r["name"] for r in drift["results"]} == {
            "price of viewed and bought items",
            "category mix of recommended items",
        }
        prom = c.get("/metrics", headers={"Authorization": f"Bearer {KEYS['read']}"})
        assert prom.status_code == 200
        assert (
            'shelfwise_alert_revenue_at_risk_per_hour{category="bedding",placement="home_top_picks",severity="page"} 1234.5'
            in prom.text
        )
    listed = json_of(run_cli(["alerts", "list", "--json"], env))
    assert listed[0]["alert_id"] == "demo-alert-1"
    cli = json_of(run_cli(["monitoring", "metrics", "--range", "14d", "--json"], env))
    assert cli["total"]["revenue"] == pytest.approx(m["total"]["revenue"])


def test_no_dashboard_page_is_reachable_anonymously(demo: tuple[str, dict[str, str]]) -> None:
    base, _ = demo
    with httpx.Client(base_url=base, timeout=30) as c:
        for page in (*PAGES, "/static/plotly.min.js"):
            r = c.get(f"/dashboard{page}")
            assert r.status_code in (303, 401), page
            if r.status_code == 303:
                assert r.headers["location"].startswith("/dashboard/login")
        with httpx.Client(
            base_url=base, timeout=30, cookies={"shelfwise_session": "eyJuIjoieCJ9.00"}
        ) as forger:
            assert forger.get("/dashboard").status_code == 303
        wrong = c.post("/dashboard/login", data={"api_key": "nope"})
        assert wrong.status_code == 401 and "not valid" in wrong.text
        ingest = c.post("/dashboard/login", data={"api_key": KEYS["ingest"]})
        assert ingest.status_code == 403
        ok = c.post(
            "/dashboard/login", data={"api_key": KEYS["merchandiser"], "next": "/dashboard/alerts"}
        )
        assert ok.status_code == 303 and ok.headers["location"] == "/dashboard/alerts"
        cookie = ok.headers["set-cookie"]
        assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
        for page in PAGES:
            r = c.get(f"/dashboard{page}")
            assert r.status_code == 200, page
        assert c.get("/dashboard/static/plotly.min.js").text.startswith("/**")
        assert "not yet available" in c.get("/dashboard/signals").text


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


def _plotted(page: Any) -> list[int]:
    """Traces per rendered plotly chart on the page."""
    result: list[int] = page.eval_on_selector_all(
        ".js-plotly-plot", "els => els.map(e => (e.data || []).length)"
    )
    return result


@pytest.mark.browser
def test_every_page_renders_and_agrees_with_the_api(
    browser: Any, demo: tuple[str, dict[str, str]]
) -> None:
    server, _ = demo
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

    for path in PAGES:
        charts = path in CHARTED
        # Drift compares the last day with the days before it; the rest show two weeks.
        rng = "24h" if path == "/drift" else "14d"
        page.goto(f"{server}/dashboard{path}?range={rng}")
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


def test_evaluating_a_calm_store_resolves_the_open_alert(demo: tuple[str, dict[str, str]]) -> None:
    base, env = demo
    with httpx.Client(base_url=base, timeout=30) as c:
        assert c.post("/v1/alerts/evaluate", headers={"X-API-Key": KEYS["read"]}).status_code == 403
        ev = c.post("/v1/alerts/evaluate", headers={"X-API-Key": KEYS["admin"]}).json()
        assert ev["series"] == 24 and ev["opened"] == []
        assert [a["alert_id"] for a in ev["resolved"]] == ["demo-alert-1"]
    assert json_of(run_cli(["alerts", "list", "--status", "open", "--json"], env)) == []
