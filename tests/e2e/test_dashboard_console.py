"""The merchandiser's console in headless Chromium on the real server, on a desktop and
a 390-px phone viewport: rules are created, edited, disabled, restored and deleted
through the dashboard's forms (a slate served right after shows the change); a
stale edit says so and overwrites nothing; no page scrolls sideways; an experiment
without enough persons reads "collecting data", never "valid"."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx2 as httpx
import pytest

from shelfwise.config import load_settings
from shelfwise.store.types import utcnow
from tests.conftest import API_KEYS, KEYS
from tests.e2e.browser import chromium
from tests.e2e.demo_store import seed_demo_store
from tests.e2e.server import running_server, settings_env
from tests.e2e.test_dashboard import PAGES, SHOTS

VIEWPORTS = {"desktop": (1280, 900), "phone": (390, 844)}
EDITOR_PAGES = ("/rules/edit", "/rules/edit?type=exclude", "/rules/edit?type=price_relation")
EARLY = "exp-too-early"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The real server on a demo store: (base URL, the rec_id of one served slate)."""
    tmp = tmp_path_factory.mktemp("console")
    settings = load_settings(
        database_url=f"sqlite:///{tmp / 'shelfwise.db'}", api_keys=API_KEYS, model_dir=tmp / "m"
    )
    seed_demo_store(settings)
    with running_server(settings_env(settings)) as base:
        with httpx.Client(base_url=base, timeout=30) as c:
            # An experiment nobody has been exposed to yet: nothing to judge.
            made = c.post(
                "/v1/experiments",
                json={
                    "experiment_id": EARLY,
                    "name": "Cart add-ons: just started",
                    "placement": "cart",
                    "arms": [
                        {"name": "control", "share": 0.5, "sources": ["popular"]},
                        {"name": "ranked", "share": 0.5},
                    ],
                    "pre_period_days": 0,
                    "start": (utcnow() - timedelta(hours=1)).isoformat(),
                },
                headers={"X-API-Key": KEYS["merchandiser"]},
            )
            assert made.status_code == 201, made.text
            served = c.get(
                "/v1/recommendations",
                params={"placement": "home", "person": "shown"},
                headers={"X-API-Key": KEYS["read"]},
            )
            assert served.status_code == 200, served.text
        yield base, served.json()["rec_id"]


@pytest.fixture(scope="module")
def server(served: tuple[str, str]) -> str:
    return served[0]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def _signed_in(browser: Any, server: str, viewport: str) -> Any:
    width, height = VIEWPORTS[viewport]
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(60_000)  # a loaded machine is slow, not broken
    page.goto(f"{server}/dashboard/login")
    page.fill("#api_key", KEYS["merchandiser"])
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/dashboard")
    return page


def _slate(api: httpx.Client, person: str) -> list[str]:
    r = api.get("/v1/recommendations", params={"placement": "home", "person": person})
    assert r.status_code == 200, r.text
    return [it["product_id"] for it in r.json()["items"]]


def _rule(merch: httpx.Client, rule_id: str) -> dict[str, Any]:
    r = merch.get(f"/v1/rules/{rule_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _go(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_load_state("domcontentloaded")


def _no_sideways_scroll(page: Any, width: int, where: str) -> None:
    page.wait_for_load_state("load")
    scroll = page.evaluate("document.scrollingElement.scrollWidth")
    assert scroll <= width, f"{where}: the page is {scroll} px wide in a {width} px viewport"


@pytest.mark.browser
@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_no_page_scrolls_sideways(browser: Any, served: tuple[str, str], viewport: str) -> None:
    server, rec_id = served
    width, _ = VIEWPORTS[viewport]
    page = _signed_in(browser, server, viewport)
    SHOTS.mkdir(parents=True, exist_ok=True)
    details = (
        f"/experiments?experiment={EARLY}",
        "/rules?rule=x",
        f"/decisions?rec_id={rec_id}",
        "/categories?placement=home_top_picks&category=bedding",
    )
    for path in (*PAGES, *EDITOR_PAGES, *details):
        sep = "&" if "?" in path else "?"
        _go(page, f"{server}/dashboard{path}{sep}range=14d")
        _no_sideways_scroll(page, width, path or "/")
        shown = path.replace(rec_id, "slate")
        name = re.sub(r"[^a-z0-9]+", "-", shown.lower()).strip("-") or "overview"
        page.screenshot(path=str(SHOTS / f"{viewport}-{name}.png"), full_page=True)
    # A wide table scrolls inside its own box instead.
    _go(page, f"{server}/dashboard?range=14d")
    boxes = page.eval_on_selector_all(
        "div.scroll", "els => els.map(e => [e.scrollWidth, e.clientWidth])"
    )
    assert boxes and all(client <= width for _, client in boxes)
    if viewport == "phone":
        assert any(inner > client for inner, client in boxes), boxes
    page.close()


@pytest.mark.browser
@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_rules_are_changed_from_the_dashboard(browser: Any, server: str, viewport: str) -> None:
    width, _ = VIEWPORTS[viewport]
    rule_id = f"hide-top-{viewport}"
    person = f"console-{viewport}"
    page = _signed_in(browser, server, viewport)
    page.on("dialog", lambda d: d.accept())
    with (
        httpx.Client(base_url=server, headers={"X-API-Key": KEYS["read"]}, timeout=30) as api,
        httpx.Client(
            base_url=server, headers={"X-API-Key": KEYS["merchandiser"]}, timeout=30
        ) as merch,
    ):
        before = _slate(api, person)
        top = before[0]

        # Create: the exclude form, from the rules page's link.
        _go(page, f"{server}/dashboard/rules")
        page.click("text=New exclude rule")
        page.wait_for_url(re.compile(r".*/dashboard/rules/edit\?type=exclude$"))
        _no_sideways_scroll(page, width, "new rule form")
        page.fill("input[name=id]", rule_id)
        page.fill("input[name=reason]", "hide the top item")
        page.fill("input[name=when]", f"{{attr: product_id, op: eq, value: {top}}}")
        page.check("input[name='placement.home']")
        # Preview first: the served home slates replayed with the rule; nothing saved.
        page.click("[data-testid=preview-rule]")
        page.wait_for_load_state("domcontentloaded")
        shown = page.get_by_test_id("rule-preview")
        assert float(shown.get_by_test_id("preview-changed").get_attribute("data-value")) >= 1
        assert shown.get_by_test_id(f"preview-removed-{top}").is_visible()
        assert page.locator("input[name=id]").input_value() == rule_id  # the form as typed
        assert merch.get(f"/v1/rules/{rule_id}").status_code == 404
        _no_sideways_scroll(page, width, "rule preview")
        page.click("[data-testid=save]")
        page.wait_for_url(re.compile(r".*/dashboard/rules\?rule=.*&done=create$"))
        assert "created: now at version 1" in page.get_by_test_id("notice").inner_text()
        assert _rule(merch, rule_id)["version"] == 1
        assert top not in _slate(api, person)  # applies to the next request, no retraining

        # A refused form shows the API's code and keeps what was typed.
        _go(page, f"{server}/dashboard/rules/edit?type=exclude")
        page.fill("input[name=id]", f"{rule_id}-bad")
        page.fill("input[name=reason]", "broken")
        page.fill("input[name=when]", "{attr: price, op: nope, value: 5}")
        page.click("[data-testid=save]")
        problems = page.get_by_test_id("problems")
        assert "invalid_request" in problems.inner_text()
        assert page.locator("input[name=when]").input_value() == "{attr: price, op: nope, value: 5}"
        assert merch.get(f"/v1/rules/{rule_id}-bad").status_code == 404

        # Edit.
        _go(page, f"{server}/dashboard/rules")
        page.click(f"[data-testid=edit-{rule_id}]")
        page.wait_for_url(re.compile(r".*/dashboard/rules/edit\?rule=.*"))
        assert page.get_by_test_id("form-version").inner_text() == "1"
        page.fill("input[name=reason]", "hide the top item (edited)")
        page.fill("input[name=why]", "clearer reason")
        page.click("[data-testid=save]")
        page.wait_for_url(re.compile(r".*done=update$"))
        edited = _rule(merch, rule_id)
        assert (edited["version"], edited["reason"]) == (2, "hide the top item (edited)")

        # A stale edit: someone saves version 3 while the form shows version 2.
        _go(page, f"{server}/dashboard/rules/edit?rule={rule_id}")
        theirs = merch.put(
            f"/v1/rules/{rule_id}",
            json={**edited, "priority": 7},
            headers={"If-Match": '"2"', "X-Change-Reason": "someone else"},
        )
        assert theirs.status_code == 200
        page.fill("input[name=reason]", "my late change")
        page.click("[data-testid=save]")
        page.wait_for_load_state("domcontentloaded")
        stale = page.get_by_test_id("problems").inner_text()
        assert "stale_version" in stale and "is at version 3, not 2" in stale
        now = _rule(merch, rule_id)
        assert (now["version"], now["reason"], now["priority"]) == (
            3,
            "hide the top item (edited)",
            7,
        )
        page.click("[data-testid=reload]")
        assert page.get_by_test_id("form-version").inner_text() == "3"

        # Disable: the item comes back.
        _go(page, f"{server}/dashboard/rules")
        page.click(f"[data-testid=disable-{rule_id}]")
        page.wait_for_url(re.compile(r".*done=disable$"))
        assert page.get_by_test_id(f"state-{rule_id}").inner_text() == "Disabled"
        assert _rule(merch, rule_id)["enabled"] is False
        assert top in _slate(api, person)

        # Restore version 2 (enabled) from the rule's history: the item is hidden again.
        _go(page, f"{server}/dashboard/rules?rule={rule_id}")
        page.click(f"[data-testid=restore-{rule_id}-2]")
        page.wait_for_url(re.compile(r".*done=restore$"))
        restored = _rule(merch, rule_id)
        assert (restored["version"], restored["enabled"], restored["priority"]) == (5, True, 0)
        assert top not in _slate(api, person)
        history = merch.get(f"/v1/rules/{rule_id}/history").json()
        assert [(h["action"], h["who"]) for h in history] == [
            ("create", "merchandiser"),
            ("update", "merchandiser"),
            ("update", "merchandiser"),
            ("disable", "merchandiser"),
            ("restore", "merchandiser"),
        ]
        assert history[1]["why"] == "clearer reason" and history[2]["why"] == "someone else"

        # Delete (after the browser's confirmation).
        _go(page, f"{server}/dashboard/rules")
        page.click(f"[data-testid=delete-{rule_id}]")
        page.wait_for_url(re.compile(r".*done=delete$"))
        assert "no longer in the rulebook" in page.get_by_test_id("notice").inner_text()
        assert merch.get(f"/v1/rules/{rule_id}").status_code == 404
        assert top in _slate(api, person)
        _no_sideways_scroll(page, width, "rules after the changes")
    page.close()


@pytest.mark.browser
def test_an_experiment_without_persons_is_collecting_data(browser: Any, server: str) -> None:
    page = _signed_in(browser, server, "phone")
    _go(page, f"{server}/dashboard/experiments?experiment={EARLY}")
    assert page.get_by_test_id("validity").inner_text() == "Collecting data"
    assert page.get_by_test_id("srm-status").inner_text() == "Not enough data"
    assert page.get_by_test_id("sample").inner_text() == "0 vs 0 / 100 (default)"
    assert page.get_by_test_id("expected-date").inner_text() == "n/a (an arm has no enrolment yet)"
    summary = page.get_by_test_id("summary").inner_text()
    assert "collecting data: 0 vs 0 persons of 100 per arm" in summary
    assert "valid" not in summary.lower().replace("collecting data", "")
    assert page.locator("div.chart").count() == 0
    assert "No lift chart yet (collecting data" in page.locator("body").inner_text()
    page.close()


def test_overview_and_drift_agree_with_the_api(served: tuple[str, str]) -> None:
    """The two revenue figures are the API's two definitions, side by side; the drift
    page counts the slates the decision log holds (served just now)."""
    server, _ = served
    with httpx.Client(base_url=server, timeout=30, follow_redirects=False) as c:
        assert c.post("/dashboard/login", data={"api_key": KEYS["merchandiser"]}).status_code == 303
        page = c.get("/dashboard?range=14d").text
        drift = c.get("/dashboard/drift?range=24h").text
        metrics = c.get(
            "/v1/monitoring/metrics?by=placement&range=14d", headers={"X-API-Key": KEYS["read"]}
        ).json()
    (with_recs,) = [s for s in metrics["sessions"] if s["interacted"]]
    assert metrics["total"]["revenue"] > 0 and with_recs["revenue"] > 0

    def value(testid: str, html: str) -> float:
        found = re.search(rf'data-testid="{testid}" data-value="([^"]+)"', html)
        assert found, testid
        return float(found.group(1))

    assert value("total-revenue", page) == pytest.approx(metrics["total"]["revenue"])
    assert value("interacted-revenue", page) == pytest.approx(with_recs["revenue"])
    assert "Revenue from recommendations <span" in page
    assert metrics["attribution_window_hours"] == 24.0
    assert 'data-testid="attribution-window">(24 h attribution window)' in page
    assert "no decision log is attached" not in page + drift
    assert value("decisions-note", drift) >= 1  # the slate the fixture served
    assert "in the current window and none in the 14 days before it" in drift


@pytest.mark.browser
def test_the_other_forms_work_on_a_phone(browser: Any, served: tuple[str, str]) -> None:
    """The preview, the decision lookup, the placement picker and sign-out at 390 px."""
    server, rec_id = served
    width, _ = VIEWPORTS["phone"]
    page = _signed_in(browser, server, "phone")
    _go(page, f"{server}/dashboard/rules")
    page.fill(
        "textarea[name=draft]",
        "id: no-cheap\ntype: exclude\nreason: r\nwhen: {attr: price, op: lt, value: 20}\n",
    )
    page.fill("input[name=last]", "20")
    page.click("button:has-text('Preview')")
    page.wait_for_load_state("domcontentloaded")
    assert float(page.get_by_test_id("preview-requests").get_attribute("data-value")) >= 1
    _no_sideways_scroll(page, width, "rules preview")

    _go(page, f"{server}/dashboard/decisions")
    page.fill("input[name=rec_id]", rec_id)
    page.click("button:has-text('Explain')")
    page.wait_for_load_state("domcontentloaded")
    assert page.get_by_test_id("placement").get_attribute("data-value") == "home"
    _no_sideways_scroll(page, width, "one decision")

    _go(page, f"{server}/dashboard/categories?range=14d")
    page.select_option("select[name=placement]", "product_similar")
    page.wait_for_url(re.compile(r".*placement=product_similar.*"))
    assert "Categories: Product similar" in page.locator("h1").inner_text()
    _no_sideways_scroll(page, width, "categories of one placement")

    page.click("text=Sign out")
    page.wait_for_url(re.compile(r".*/dashboard/login.*"))
    page.close()
