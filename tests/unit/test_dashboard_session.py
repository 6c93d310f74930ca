"""Dashboard session cookies and form tokens: signed under a secret nobody can derive,
bound to the key that signed in, expiring; every malformed cookie reads as signed out.
Number formatting."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from itsdangerous import URLSafeSerializer

from shelfwise.access import KeyRing, Principal
from shelfwise.config import ApiKey
from shelfwise.dashboard.format import label, money, percent
from shelfwise.dashboard.session import Session, Sessions

MERCH = ApiKey(name="merch", secret="merch-secret-key", roles=("merchandiser",))
OTHER = ApiKey(name="other", secret="other-secret-key", roles=("merchandiser",))
RING = KeyRing((MERCH, OTHER))
SECRET = "s" * 32
NOW = 1_000_000.0


def _old_derived_secret(keys: tuple[ApiKey, ...]) -> bytes:
    """What the previous code signed with when no secret was configured: public material."""
    digests = sorted(k.digest() for k in keys)
    return hashlib.sha256(("shelfwise-dashboard\0" + "\0".join(digests)).encode()).digest()


def _old_format_cookie(secret: bytes, roles: list[str], expires: float) -> str:
    body = json.dumps({"n": "mallory", "r": roles, "e": int(expires)})
    payload = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
    return payload + "." + hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()


def test_a_session_verifies_until_it_expires() -> None:
    sessions = Sessions(SECRET, hours=1)
    cookie, session = sessions.open("merch", MERCH.digest(), now=NOW)
    assert sessions.read(cookie, now=NOW + 100) == session
    assert session.expires == NOW + 3600 and session.key == "merch"
    assert sessions.holder(session, RING) == Principal("merch", frozenset({"merchandiser"}))
    assert sessions.read(cookie, now=NOW + 3600) is None
    # Another secret (another installation) refuses it.
    assert Sessions("t" * 32, hours=1).read(cookie, now=NOW + 100) is None
    # Two sign-ins of the same key are two sessions.
    assert sessions.open("merch", MERCH.digest(), now=NOW)[1].sid != session.sid


def test_a_tampered_cookie_is_refused() -> None:
    sessions = Sessions(SECRET, hours=1)
    cookie, _ = sessions.open("merch", MERCH.digest(), now=NOW)
    payload, mac = cookie.rsplit(".", 1)
    assert sessions.read(payload + "." + mac[::-1], now=NOW) is None
    assert sessions.read(payload[:-1] + "." + mac, now=NOW) is None
    # A cookie with the right shape but signed under a guessed secret.
    guessed = URLSafeSerializer("guess" * 8, salt="shelfwise.dashboard.session")
    forged = guessed.dumps(
        {"k": "merch", "f": sessions.fingerprint(MERCH.digest()), "s": "x", "e": int(NOW) + 60}
    )
    assert sessions.read(forged, now=NOW) is None


def test_a_cookie_forged_with_the_old_derived_secret_is_refused() -> None:
    sessions = Sessions(SECRET, hours=1)
    old = _old_derived_secret((MERCH, OTHER))
    assert sessions.read(_old_format_cookie(old, ["admin"], NOW + 60), now=NOW) is None
    # Even in today's format, the public material signs nothing.
    as_new = URLSafeSerializer(old, salt="shelfwise.dashboard.session")
    forged = as_new.dumps({"k": "merch", "f": "x", "s": "x", "e": int(NOW) + 60})
    assert sessions.read(forged, now=NOW) is None


def test_a_session_holds_only_for_the_very_key_that_opened_it() -> None:
    sessions = Sessions(SECRET, hours=1)
    _, session = sessions.open("merch", MERCH.digest(), now=NOW)
    # The same name with another key (rotated) or another name with this key: nobody.
    rotated = ApiKey(name="merch", secret="rotated-secret-key", roles=("merchandiser",))
    assert sessions.holder(session, KeyRing((rotated, OTHER))) is None
    renamed = Session("other", session.fingerprint, session.sid, session.expires)
    assert sessions.holder(renamed, RING) is None
    # A fingerprint under another secret does not match either.
    elsewhere = Sessions("t" * 32, hours=1).open("merch", MERCH.digest(), now=NOW)[1]
    assert sessions.holder(elsewhere, RING) is None
    # The key removed from the ring: the session ends.
    assert sessions.holder(session, KeyRing((OTHER,))) is None


@pytest.mark.parametrize(
    "cookie",
    [
        None,
        "",
        "garbage",
        "é.é",
        "\udcff.x",
        "eyJuIjoieCJ9.00",
        "a" * 5000,
        "..",
        # Signed, but not a session: a list, missing fields, wrong types.
        URLSafeSerializer(SECRET, salt="shelfwise.dashboard.session").dumps([1, 2]),
    ],
)
def test_a_malformed_cookie_reads_as_signed_out(cookie: str | None) -> None:
    assert Sessions(SECRET, hours=1).read(cookie, now=NOW) is None


@pytest.mark.parametrize(
    "data",
    [
        {"k": "merch", "f": "x", "s": "x"},
        {"k": "merch", "f": "x", "s": "x", "e": "soon"},
        {"k": 1, "f": "x", "s": "x", "e": int(NOW) + 60},
        {"k": "merch", "f": "x", "s": "x", "e": int(NOW) + 60, "r": ["admin"]},
    ],
)
def test_a_signed_cookie_of_the_wrong_shape_reads_as_signed_out(data: dict[str, object]) -> None:
    sessions = Sessions(SECRET, hours=1)
    cookie = sessions._cookies.dumps(data)  # signed with the right secret, on purpose
    assert sessions.read(cookie, now=NOW) is None


def test_a_form_token_belongs_to_one_session() -> None:
    sessions = Sessions(SECRET, hours=1)
    _, mine = sessions.open("merch", MERCH.digest(), now=NOW)
    _, theirs = sessions.open("merch", MERCH.digest(), now=NOW)
    token = sessions.form_token(mine)
    assert sessions.form_token_ok(mine, token)
    assert not sessions.form_token_ok(theirs, token)
    assert not sessions.form_token_ok(mine, None)
    assert not sessions.form_token_ok(mine, "")
    assert not sessions.form_token_ok(mine, token[:-1])
    assert not sessions.form_token_ok(mine, "é" * len(token))
    assert not Sessions("t" * 32, hours=1).form_token_ok(mine, token)


def test_readable_numbers() -> None:
    assert money(1234.5, "EUR") == "€1,234.50"
    assert money(-3, "SEK") == "-3.00 SEK"
    assert money(None, "EUR") == "n/a"
    assert percent(0.07412) == "7.41%"
    assert label("home_top_picks") == "Home top picks"
    assert label("bedding/duvet-covers") == "Bedding / duvet covers"
