"""/docs and /redoc on the real server load every asset from the server itself (no CDN)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx2 as httpx
import pytest

from shelfwise.config import Settings
from tests.e2e.browser import chromium
from tests.e2e.server import running_server, settings_env

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.IGNORECASE)


@pytest.fixture
def server(sqlite_settings: Settings) -> Iterator[str]:
    with running_server(settings_env(sqlite_settings)) as base:
        yield base


def test_pages_name_no_external_url(server: str) -> None:
    with httpx.Client(base_url=server, timeout=30) as c:
        for page, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
            html = c.get(page)
            assert html.status_code == 200
            assert "default-src 'self'" in html.headers["content-security-policy"]
            assert EXTERNAL.search(html.text) is None, html.text
            assert f'src="/docs/assets/{asset}"' in html.text
            js = c.get(f"/docs/assets/{asset}")
            assert js.status_code == 200 and len(js.content) > 100_000
            assert "javascript" in js.headers["content-type"]
        css = c.get("/docs/assets/swagger-ui.css")
        assert css.status_code == 200 and "text/css" in css.headers["content-type"]


@pytest.mark.browser
def test_pages_render_offline_in_a_browser(server: str) -> None:
    with chromium() as browser:
        page = browser.new_page()
        loaded: list[str] = []
        blocked: dict[str, str] = {}
        page.on("response", lambda response: loaded.append(response.url))
        page.on("requestfailed", lambda request: blocked.update({request.url: request.failure}))
        page.goto(f"{server}/docs")
        page.wait_for_selector(".swagger-ui .opblock", timeout=60_000)
        assert page.locator(".swagger-ui .opblock").count() > 40
        # The API key schemes are there to authorise with.
        assert page.locator(".swagger-ui .btn.authorize").count() == 1
        page.goto(f"{server}/redoc")
        page.wait_for_selector("[data-section-id]", timeout=60_000)
        assert page.locator("h1").first.inner_text().startswith("shelfwise")
        own = (server, f"blob:{server}")  # ReDoc's search runs in a worker made from a blob
        assert loaded and [u for u in loaded if not u.startswith(own)] == []
        # ReDoc's vendor logo is the one thing it asks elsewhere for; the page's
        # Content-Security-Policy keeps the browser from fetching it.
        foreign = {u: why for u, why in blocked.items() if not u.startswith(own)}
        assert all("csp" in (why or "").lower() for why in foreign.values()), foreign
