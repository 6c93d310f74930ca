"""A small user-agent parser: platform, operating system and browser family.

Events may carry only the raw ``user_agent``; the contract fills ``platform``,
``os`` and ``browser`` from it so the signal-quality report can segment them.
Only the families a store's traffic is made of are recognised; anything else
is left ``None`` rather than guessed. Tokens are tested in an order that
respects how browsers impersonate each other (Edge and Opera say "Chrome",
Chrome says "Safari", everything says "Mozilla").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# (family, token regex); first match wins.
_BROWSERS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("Edge", r"\bEdg(?:e|A|iOS)?/"),
        ("Opera", r"\b(?:OPR|Opera|OPiOS)/"),
        ("Samsung Internet", r"\bSamsungBrowser/"),
        ("Firefox", r"\b(?:Firefox|FxiOS)/"),
        ("Chrome", r"\b(?:Chrome|CriOS)/"),
        ("Safari", r"\bVersion/[\d.]+.*\bSafari/"),
    )
)
_OSES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        ("iOS", r"\b(?:iPhone|iPad|iPod)\b|\bCPU (?:iPhone )?OS \d"),
        ("Android", r"\bAndroid\b"),
        ("Windows", r"\bWindows\b"),
        ("macOS", r"\bMacintosh\b|\bMac OS X\b"),
        ("ChromeOS", r"\bCrOS\b"),
        ("Linux", r"\bLinux\b"),
    )
)
_MOBILE = re.compile(r"\bMobile\b|\biPhone\b|\biPod\b|\bAndroid\b")
_ANDROID_WEBVIEW = re.compile(r"; wv\)")
_IOS_WEBVIEW = re.compile(r"\bAppleWebKit/[\d.]+ \(KHTML, like Gecko\) Mobile/\w+$")


@dataclass(frozen=True)
class UserAgent:
    platform: str | None
    os: str | None
    browser: str | None


def parse_user_agent(ua: str) -> UserAgent:
    """``platform`` is ``web``, ``mobile_web`` or ``webview``; families are None when unknown."""
    ua = ua.strip()
    os_name = next((name for name, rx in _OSES if rx.search(ua)), None)
    browser = next((name for name, rx in _BROWSERS if rx.search(ua)), None)
    if not ua.startswith("Mozilla/"):
        return UserAgent(platform=None, os=os_name, browser=browser)
    if _ANDROID_WEBVIEW.search(ua) or (os_name == "iOS" and _IOS_WEBVIEW.search(ua)):
        return UserAgent(platform="webview", os=os_name, browser=browser)
    platform = "mobile_web" if _MOBILE.search(ua) else "web"
    return UserAgent(platform=platform, os=os_name, browser=browser)
