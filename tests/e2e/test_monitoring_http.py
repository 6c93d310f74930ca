"""Monitoring API, Prometheus, the CLI and the dashboard's sign-in, on the real server."""

from __future__ import annotations

import httpx2 as httpx
import pytest

from shelfwise.config import Settings
from tests.conftest import KEYS
from tests.e2e.demo_store import seed_demo_store
from tests.e2e.server import json_of, run_cli, running_server, settings_env

PAGES = ("", "/categories", "/alerts", "/drift", "/signals", "/experiments", "/rules", "/decisions")


@pytest.fixture
def seeded(sqlite_settings: Settings) -> Settings:
    # The store queries run on both backends in tests/integration; here the
    # server, the CLI and the sign-in are under test.
    seed_demo_store(sqlite_settings)
    return sqlite_settings


def test_api_prometheus_and_cli_agree(seeded: Settings) -> None:
    env = settings_env(seeded)
    read = {"X-API-Key": KEYS["read"]}
    with running_server(env) as base, httpx.Client(base_url=base, timeout=30) as c:
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
        assert c.post("/v1/alerts/evaluate", headers=read).status_code == 403
        ev = c.post("/v1/alerts/evaluate", headers={"X-API-Key": KEYS["admin"]}).json()
        assert ev["series"] > 0
    listed = json_of(run_cli(["alerts", "list", "--json"], env))
    assert listed[0]["alert_id"] == "demo-alert-1"
    cli = json_of(run_cli(["monitoring", "metrics", "--range", "14d", "--json"], env))
    assert cli["total"]["revenue"] == pytest.approx(m["total"]["revenue"])
    for args in (
        ["alerts", "--help"],
        ["alerts", "evaluate", "--help"],
        ["monitoring", "drift", "--help"],
    ):
        r = run_cli(args, env)
        assert r.returncode == 0 and "Usage" in r.stdout


def test_no_dashboard_page_is_reachable_anonymously(seeded: Settings) -> None:
    env = settings_env(seeded)
    with running_server(env) as base, httpx.Client(base_url=base, timeout=30) as c:
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
