"""Dashboard session cookies: signed, expiring, tamper-evident; number formatting."""

from __future__ import annotations

from shelfwise.api.auth import Principal
from shelfwise.config import ApiKey, load_settings
from shelfwise.dashboard.format import label, money, percent
from shelfwise.dashboard.session import sign, verify

KEY = ApiKey(name="merch", secret="merch-secret-key", roles=("merchandiser",))


def test_a_signed_session_verifies_until_it_expires() -> None:
    s = load_settings(api_keys=(KEY,), dashboard_secret="s" * 32, dashboard_session_hours=1)
    who = Principal(name="merch", roles=frozenset({"merchandiser"}))
    token = sign(who, s, now=1_000_000)
    assert verify(token, s, now=1_000_100) == who
    assert verify(token, s, now=1_000_000 + 3601) is None
    payload, mac = token.rsplit(".", 1)
    assert verify(payload + "." + "0" * len(mac), s, now=1_000_100) is None
    other = load_settings(api_keys=(KEY,), dashboard_secret="t" * 32)
    assert verify(token, other, now=1_000_100) is None
    assert verify(None, s) is None and verify("garbage", s) is None


def test_without_a_secret_the_key_digests_sign() -> None:
    s = load_settings(api_keys=(KEY,))
    who = Principal(name="merch", roles=frozenset({"merchandiser"}))
    token = sign(who, s)
    assert verify(token, load_settings(api_keys=(KEY,))) == who
    rotated = ApiKey(name="merch", secret="another-secret-key", roles=("merchandiser",))
    assert verify(token, load_settings(api_keys=(rotated,))) is None


def test_readable_numbers() -> None:
    assert money(1234.5, "EUR") == "€1,234.50"
    assert money(-3, "SEK") == "-3.00 SEK"
    assert money(None, "EUR") == "n/a"
    assert percent(0.07412) == "7.41%"
    assert label("home_top_picks") == "Home top picks"
    assert label("bedding/duvet-covers") == "Bedding / duvet covers"
