"""Where shoppers browse from: platforms and browsers in realistic shares, with
the user agents, OS names and app versions their events carry."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Surface:
    """One platform and browser combination a device can be."""

    key: str
    platform: str  # the event contract's Platform literal
    os: str
    browser: str
    share: float
    user_agent: str
    app_versions: tuple[str, ...] = ()
    has_device_id: bool = False
    cookie_days: int | None = None  # a first-party cookie that expires after this idle time

    @property
    def is_mobile_safari(self) -> bool:
        return self.platform == "mobile_web" and self.browser == "Safari"


_IOS = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
_ANDROID = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko)"
_WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"

# Shares of devices of a European home-goods store: about half mobile web,
# a third desktop, the rest apps and in-app browsers (Instagram, Facebook).
SURFACES: tuple[Surface, ...] = (
    Surface(
        "desktop_chrome", "web", "Windows", "Chrome", 0.26, f"{_WIN} Chrome/126.0 Safari/537.36"
    ),
    Surface(
        "desktop_edge",
        "web",
        "Windows",
        "Edge",
        0.05,
        f"{_WIN} Chrome/126.0 Safari/537.36 Edg/126.0",
    ),
    Surface(
        "desktop_firefox",
        "web",
        "Windows",
        "Firefox",
        0.03,
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    ),
    Surface(
        "desktop_safari",
        "web",
        "macOS",
        "Safari",
        0.06,
        f"{_MAC} Version/17.5 Safari/605.1.15",
        cookie_days=7,
    ),
    Surface(
        "mobile_safari",
        "mobile_web",
        "iOS",
        "Safari",
        0.24,
        f"{_IOS} Version/17.5 Mobile/15E148 Safari/604.1",
        cookie_days=7,
    ),
    Surface(
        "mobile_chrome",
        "mobile_web",
        "Android",
        "Chrome",
        0.18,
        f"{_ANDROID} Chrome/126.0 Mobile Safari/537.36",
    ),
    Surface(
        "mobile_samsung",
        "mobile_web",
        "Android",
        "Samsung Internet",
        0.03,
        f"{_ANDROID} SamsungBrowser/25.0 Chrome/121.0 Mobile Safari/537.36",
    ),
    Surface(
        "ios_app",
        "ios_app",
        "iOS",
        "shelfwise-app",
        0.06,
        "HomeStore/5.2 (iPhone; iOS 17.5)",
        ("5.1.0", "5.2.0", "5.2.1"),
        has_device_id=True,
    ),
    Surface(
        "android_app",
        "android_app",
        "Android",
        "shelfwise-app",
        0.04,
        "HomeStore/5.2 (Android 14; Pixel 8)",
        ("5.1.0", "5.2.0"),
        has_device_id=True,
    ),
    Surface(
        "instagram_webview",
        "webview",
        "iOS",
        "Instagram",
        0.03,
        f"{_IOS} Mobile/15E148 Instagram 330.0.0.0 (iPhone15,2; iOS 17_5)",
        cookie_days=1,
    ),
    Surface(
        "facebook_webview",
        "webview",
        "Android",
        "Facebook",
        0.02,
        f"{_ANDROID} Chrome/126.0 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/470.0]",
        cookie_days=1,
    ),
)

SURFACE_SHARES = np.array([s.share for s in SURFACES]) / sum(s.share for s in SURFACES)


def surface_index(key: str) -> int:
    for i, s in enumerate(SURFACES):
        if s.key == key:
            return i
    raise KeyError(key)


def expected_platform_shares() -> dict[str, float]:
    """The share of devices per event ``platform`` (what session shares converge to)."""
    out: dict[str, float] = {}
    for s, share in zip(SURFACES, SURFACE_SHARES, strict=True):
        out[s.platform] = out.get(s.platform, 0.0) + float(share)
    return out
