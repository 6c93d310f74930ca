from __future__ import annotations

import pytest

from shelfwise.contracts.useragent import parse_user_agent

CASES = [
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
        ("mobile_web", "iOS", "Safari"),
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
        ("web", "Windows", "Edge"),
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36",
        ("web", "macOS", "Chrome"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-S901B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
        ("mobile_web", "Android", "Samsung Internet"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; Pixel 7 Build/TQ3A; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.43 Mobile Safari/537.36",
        ("webview", "Android", "Chrome"),
    ),
    (
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
        ("web", "Linux", "Firefox"),
    ),
    ("curl/8.4.0", (None, None, None)),
]


@pytest.mark.parametrize(("ua", "expected"), CASES)
def test_families(ua: str, expected: tuple[str | None, str | None, str | None]) -> None:
    got = parse_user_agent(ua)
    assert (got.platform, got.os, got.browser) == expected
