"""The monitoring API, Prometheus, the CLI and the dashboard on the real server with a
demo store; every dashboard page also in one headless Chromium session, with its
numbers checked against the API and a screenshot of each under
artifacts/screenshots/ (or $DASHBOARD_ARTIFACTS/screenshots). The tests share one
seeded server and run in order: the last one re-evaluates the alerts."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from typer.testing import CliRunner

from shelfwise.cli.main import app as cli
from shelfwise.config import load_settings
from shelfwise.contracts.quality import METRICS as RATE_COUNTS
from shelfwise.dashboard.format import placement_label as label
from tests.conftest import API_KEYS, KEYS
from tests.e2e.browser import chromium
from tests.e2e.demo_store import EXPERIMENT, seed_demo_store
from tests.e2e.server import json_of, run_cli, running_server, settings_env
from tests.waiting import eventually

PAGES = ("", "/categories", "/alerts", "/drift", "/signals", "/experiments", "/rules", "/decisions")
# Pages with charts on the demo store (rules has tables and a form only).
CHARTED = {"", "/categories", "/alerts", "/drift", "/signals", "/experiments"}
SHOTS = (
    Path(os.environ.get("DASHBOARD_ARTIFACTS") or Path(__file__).resolve().parents[2] / "artifacts")
    / "screenshots"
)
RULES = (
    {
        "id": "no-slow-shipping",
        "type": "exclude",
        "reason": "never recommend items that ship in more than 10 days",
        "when": {"attr": "sla_days", "op": "gt", "value": 10},
    },
    {"id": "one-per-variant-group", "type": "dedupe_variants", "reason": "one colour per slate"},
)
DRAFT = "id: no-cheap\ntype: exclude\nreason: nothing under 20\nwhen: {attr: price, op: lt, value: 20}\n"


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
        _serve_and_govern(base)
        yield base, env


def _serve_and_govern(base: str) -> None:
    """What a live store adds over HTTP: the merchant's rules (one changed twice, for
    the audit log) and a few served slates (for the decision viewer and the preview)."""
    merch = {"X-API-Key": KEYS["merchandiser"]}
    with httpx.Client(base_url=base, timeout=30) as c:
        for rule in RULES:
            assert c.post("/v1/rules", json=rule, headers=merch).status_code == 201
        changed = c.post(
            "/v1/rules/one-per-variant-group/disable",
            headers={**merch, "If-Match": '"1"', "X-Change-Reason": "testing colours"},
        )
        assert changed.status_code == 200
        for i in range(6):
            r = c.get(
                "/v1/recommendations",
                params={"placement": "home", "person": f"a{i}"},
                headers={"X-API-Key": KEYS["read"]},
            )
            assert r.status_code == 200, r.text


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
        assert m["total"]["impressions"] > 0
        # The six slates served on the home page without a model came from the fallback.
        assert m["serving"] == [
            {"placement": "home", "fallback_share": 1.0, "catalog_join_rate": 1.0}
        ]
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
    assert cli["attribution"] == m["attribution"] and "24 h before" in m["attribution"]


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
        assert "not yet available" not in c.get("/dashboard/signals").text
        # The rules preview posts back to its page; signed out it is refused too.
        out = httpx.post(f"{base}/dashboard/rules", data={"draft": DRAFT})
        assert out.status_code == 303 and out.headers["location"].startswith("/dashboard/login")
        token = _form_token(c.get("/dashboard/rules").text)
        bad = c.post("/dashboard/rules", data={"draft": "id: x\ntype: nope", "csrf_token": token})
        assert bad.status_code == 200 and "not a valid rule" in bad.text
        assert "No served slate with rec_id" in c.get("/dashboard/decisions?rec_id=nope").text


def _form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[-2000:]
    return found.group(1)


def test_the_door_holds_on_the_real_server(demo: tuple[str, dict[str, str]]) -> None:
    """Forged, malformed and cross-site requests bounce; a revoked key's session ends."""
    base, _ = demo
    admin = {"X-API-Key": KEYS["admin"]}
    with httpx.Client(base_url=base, timeout=30) as c:
        for raw in (b"shelfwise_session=\xc3\xa9.\xff", b"shelfwise_session=eyJuIjoieCJ9.00"):
            for page in ("/dashboard", "/dashboard/rules", "/dashboard/decisions"):
                r = c.get(page, headers=[(b"cookie", raw)])
                assert r.status_code == 303 and "/dashboard/login" in r.headers["location"]
        created = c.post(
            "/v1/keys", json={"name": "e2e-merch", "roles": ["merchandiser"]}, headers=admin
        ).json()
        assert c.post("/dashboard/login", data={"api_key": created["secret"]}).status_code == 303
        token = _form_token(c.get("/dashboard/rules").text)
        draft = {"draft": DRAFT, "last": "5"}
        r = c.post("/dashboard/rules", data=draft)
        assert r.status_code == 403 and r.json()["error"]["code"] == "csrf_token_invalid"
        cross = c.post(
            "/dashboard/rules",
            data={**draft, "csrf_token": token},
            headers={"Origin": "https://evil.example"},
        )
        assert cross.status_code == 403
        assert cross.json()["error"]["code"] == "csrf_origin_mismatch"
        same = c.post(
            "/dashboard/rules", data={**draft, "csrf_token": token}, headers={"Origin": base}
        )
        assert same.status_code == 200 and 'data-testid="preview-requests"' in same.text
        assert c.delete(f"/v1/keys/{created['key_id']}", headers=admin).status_code == 200
        # Each worker re-reads the stored keys every 2 s: the session ends at its next read.
        eventually(
            lambda: c.get("/dashboard/alerts").status_code != 200,
            "the session ended with its revoked key",
        )
        r = c.get("/dashboard/alerts")
        assert r.status_code == 303 and "/dashboard/login" in r.headers["location"]


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def _charts(page: Any) -> list[tuple[int, int]]:
    """Per chart on the page: (plotly traces, rendered SVG plot areas)."""
    result: list[list[int]] = page.eval_on_selector_all(
        "div.chart",
        "els => els.map(e => [(e.data || []).length, e.querySelectorAll('svg.main-svg').length])",
    )
    return [(a, b) for a, b in result]


def _value(page: Any, testid: str) -> float:
    return float(page.get_by_test_id(testid).get_attribute("data-value"))


def _shoot(page: Any, name: str) -> None:
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


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
        # Drift compares the last day with the days before it; the rest show two weeks.
        rng = "24h" if path == "/drift" else "14d"
        page.goto(f"{server}/dashboard{path}?range={rng}")
        _shoot(page, path.strip("/") or "overview")
        assert page.get_by_test_id("not-available").count() == 0, path
        drawn = _charts(page)
        if path in CHARTED:
            assert drawn and all(traces > 0 and svg > 0 for traces, svg in drawn), (path, drawn)

    with (
        httpx.Client(base_url=server, headers={"X-API-Key": KEYS["read"]}, timeout=30) as api,
        httpx.Client(
            base_url=server, headers={"X-API-Key": KEYS["merchandiser"]}, timeout=30
        ) as merch,
    ):
        _overview_and_alerts(page, server, api)
        _signals(page, server, api)
        _experiments(page, server, api)
        _rules(page, server, merch)
        _decisions(page, server, api)

    page.click("text=Sign out")
    page.goto(f"{server}/dashboard/alerts")
    assert "/dashboard/login" in page.url


def _overview_and_alerts(page: Any, server: str, api: httpx.Client) -> None:
    metrics = api.get("/v1/monitoring/metrics?by=placement&range=14d").json()
    page.goto(f"{server}/dashboard?range=14d")
    assert _value(page, "total-revenue") == pytest.approx(metrics["total"]["revenue"])
    assert page.get_by_test_id("total-revenue").inner_text().startswith("€")
    for row in metrics["rows"]:
        cell = page.get_by_test_id(f"revenue-{row['placement']}")
        assert float(cell.get_attribute("data-value")) == pytest.approx(row["revenue"])
        assert cell.inner_text() == f"€{row['revenue']:,.2f}"
    assert _value(page, "total-orders") == metrics["total"]["orders"]

    (alert,) = api.get("/v1/alerts").json()["alerts"]
    page.goto(f"{server}/dashboard/alerts")
    risk = page.get_by_test_id(f"risk-{alert['alert_id']}")
    assert risk.inner_text() == "€1,234.50" and float(risk.get_attribute("data-value")) == 1234.5
    # Seeded: the loss began 27 h before now, the alert opened 24 h before now.
    assert page.get_by_test_id(f"detected-{alert['alert_id']}").inner_text() == "3.0 h"
    page.click("text=View series")
    page.wait_for_load_state("networkidle")
    assert "placement=home_top_picks" in page.url and "category=bedding" in page.url
    assert page.get_by_test_id("chart-series").is_visible()
    _shoot(page, "alert-series")


def _signals(page: Any, server: str, api: httpx.Client) -> None:
    report = api.get("/v1/signals/report").json()
    assert report["segments"]
    page.goto(f"{server}/dashboard/signals")
    for i, seg in enumerate(report["segments"]):
        assert _value(page, f"events-{i}") == seg["counts"]["events"]
        for metric in ("view_to_cart", "join_rate"):
            rate = seg["rates"][metric]
            cell = page.get_by_test_id(f"{metric}-{i}")
            if rate is None:
                assert cell.inner_text() == "n/a"
            else:
                # The API rounds a rate to four digits; the page's text is the exact
                # ratio of the counts, so the expected text comes from the counts.
                num, den, _ = RATE_COUNTS[metric]
                exact = seg["counts"].get(num, 0) / seg["counts"][den]
                assert exact == pytest.approx(rate, abs=1e-4)
                assert float(cell.get_attribute("data-value")) == pytest.approx(exact, abs=1e-12)
                assert cell.inner_text() == f"{100 * exact:.1f}%"
    assert page.get_by_test_id("flags").locator("tr").count() == max(len(report["flags"]), 1) + 1


def _experiments(page: Any, server: str, api: httpx.Client) -> None:
    listed = api.get("/v1/experiments").json()
    assert [e["spec"]["experiment_id"] for e in listed] == [EXPERIMENT]
    report = api.get(f"/v1/experiments/{EXPERIMENT}/report").json()
    page.goto(f"{server}/dashboard/experiments")
    page.click(f"text={EXPERIMENT}")
    page.wait_for_load_state("networkidle")
    assert f"experiment={EXPERIMENT}" in page.url
    verdicts = {"ready": "Valid", "invalid": "Invalid", "collecting_data": "Collecting data"}
    assert page.get_by_test_id("validity").inner_text() == verdicts[report["status"]]
    srm = {"ok": "OK", "mismatch": "Mismatch", "not_enough_data": "Not enough data"}
    assert page.get_by_test_id("srm-status").inner_text() == srm[report["srm"]["status"]]
    for arm, n in report["srm"]["counts"].items():
        assert _value(page, f"srm-{arm}") == n
    overall = next(c for c in report["cells"] if c["placement"] == c["category"] == "all")
    assert sum(a["persons"] for a in overall["arms"]) > 100
    for a in overall["arms"]:
        assert _value(page, f"persons-all-all-{a['arm']}") == a["persons"]
        assert _value(page, f"rpp-all-all-{a['arm']}") == pytest.approx(a["revenue_per_person"])
        assert _value(page, f"recrev-all-all-{a['arm']}") == pytest.approx(
            a["recommendation_revenue"]
        )
    assert report["attribution_window_hours"] == 24.0
    assert sum(a["recommendation_revenue"] for a in overall["arms"]) > 0
    assert "Revenue from recommendations (24 h attribution window)" in page.content()
    (comp,) = overall["comparisons"]
    for metric in ("revenue_per_person", "ctr", "aov"):
        est = comp["estimates"][metric]
        cell = page.get_by_test_id(f"lift-all-all-{comp['arm']}-{metric}")
        assert float(cell.get_attribute("data-value")) == pytest.approx(est["lift"])
        assert cell.inner_text() == f"{est['lift']:+.2%}"
    (guard,) = report["guardrails"][comp["arm"]]
    table = page.get_by_test_id("guardrails")
    assert ("Passed" if guard["passed"] else "Failed") in table.inner_text()
    _shoot(page, "experiment-readout")


def _rules(page: Any, server: str, merch: httpx.Client) -> None:
    rules = merch.get("/v1/rules").json()["rules"]
    history = merch.get("/v1/rules/one-per-variant-group/history").json()
    page.goto(f"{server}/dashboard/rules")
    for r in rules:
        assert _value(page, f"version-{r['id']}") == r["version"]
    audit = page.get_by_test_id("audit").inner_text()
    assert "testing colours" in audit and "enabled: true → false" in audit
    page.click("text=one-per-variant-group >> nth=0")
    page.wait_for_load_state("networkidle")
    assert page.get_by_test_id("audit").locator("tr").count() == len(history) + 1
    page.fill("textarea[name=draft]", DRAFT)
    page.fill("input[name=last]", "50")
    page.click("button:has-text('Preview')")
    page.wait_for_load_state("networkidle")
    expected = merch.post(
        "/v1/rules/preview",
        json={
            "rules": [
                {
                    "id": "no-cheap",
                    "type": "exclude",
                    "reason": "nothing under 20",
                    "when": {"attr": "price", "op": "lt", "value": 20},
                }
            ],
            "last": 50,
        },
    ).json()
    assert _value(page, "preview-requests") == expected["requests"] == 6
    assert _value(page, "preview-changed") == expected["slates_changed"]
    money = expected["money"]
    if money["change"] is None:  # no purchase carries these slates' rec_ids
        assert page.get_by_test_id("preview-revenue-change").inner_text() == "no estimate"
    else:
        assert _value(page, "preview-revenue-change") == pytest.approx(money["change"])
    placements = page.get_by_test_id("preview-placements").inner_text()
    assert all(label(g["placement"]) in placements for g in expected["by_placement"])
    assert page.locator("textarea[name=draft]").input_value().strip() == DRAFT.strip()
    _shoot(page, "rules-preview")


def _decisions(page: Any, server: str, api: httpx.Client) -> None:
    page.goto(f"{server}/dashboard/decisions?range=24h")
    recent = page.get_by_test_id("recent").locator("a")
    assert recent.count() == 6
    rec_id = recent.first.inner_text()
    decision = api.get(f"/v1/decisions/{rec_id}").json()
    page.fill("input[name=rec_id]", rec_id)
    page.click("button:has-text('Explain')")
    page.wait_for_load_state("networkidle")
    assert page.get_by_test_id("placement").get_attribute("data-value") == decision["placement"]
    for i, item in enumerate(decision["items"]):
        assert page.get_by_test_id(f"item-{i}").inner_text() == item["product_id"]
        assert _value(page, f"score-{i}") == pytest.approx(item["score"])
    for source, n in (decision["trace"] or {}).get("candidates", {}).items():
        assert _value(page, f"source-{source}") == n
    drawn = _charts(page)
    assert drawn and all(traces > 0 and svg > 0 for traces, svg in drawn)
    _shoot(page, "decision")


def test_evaluating_a_calm_store_resolves_the_open_alert(demo: tuple[str, dict[str, str]]) -> None:
    base, env = demo
    with httpx.Client(base_url=base, timeout=30) as c:
        assert c.post("/v1/alerts/evaluate", headers={"X-API-Key": KEYS["read"]}).status_code == 403
        ev = c.post("/v1/alerts/evaluate", headers={"X-API-Key": KEYS["admin"]}).json()
        assert ev["series"] == 24 and ev["opened"] == []
        assert [a["alert_id"] for a in ev["resolved"]] == ["demo-alert-1"]
    assert json_of(run_cli(["alerts", "list", "--status", "open", "--json"], env)) == []
