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
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        # Anything not from the server is refused, as it would be offline.
        page.route(re.compile(r"^(?!" + re.escape(server) + r").*"), lambda route: route.abort())
        page.goto(f"{server}/docs")
        page.wait_for_selector(".swagger-ui .opblock", timeout=60_000)
        operations = page.locator(".swagger-ui .opblock").count()
        assert operations > 40
        # The API key scheme is there to authorise with.
        assert page.locator(".swagger-ui .btn.authorize").count() == 1
        page.goto(f"{server}/redoc")
        page.wait_for_selector("[data-section-id]", timeout=60_000)
        assert page.locator("h1").first.inner_text().startswith("shelfwise")
        foreign = [u for u in requested if not u.startswith(server) and not u.startswith("data:")]
        assert foreign == []
