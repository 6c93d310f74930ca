"""Signed webhooks: what shelfwise signs, a receiver verifies; nothing else passes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shelfwise.monitoring.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature,
    signed_headers,
    verify,
)

SECRET = "a-webhook-secret-of-some-length"
NOW = 1_790_000_000.0


def test_a_known_signature() -> None:
    # HMAC-SHA256("a-webhook-secret-of-some-length", b"1790000000.{}"), computed once.
    import hashlib
    import hmac

    expected = hmac.new(SECRET.encode(), b"1790000000.{}", hashlib.sha256).hexdigest()
    assert signature(SECRET, 1_790_000_000, b"{}") == f"v1={expected}"
    headers = signed_headers(SECRET, b"{}", now=NOW)
    assert headers == {TIMESTAMP_HEADER: "1790000000", SIGNATURE_HEADER: f"v1={expected}"}


@given(body=st.binary(max_size=2000), skew=st.floats(min_value=-300, max_value=300))
def test_what_is_signed_verifies(body: bytes, skew: float) -> None:
    h = signed_headers(SECRET, body, now=NOW)
    assert verify(SECRET, body, h[TIMESTAMP_HEADER], h[SIGNATURE_HEADER], now=NOW + skew)


@given(body=st.binary(max_size=200), other=st.binary(max_size=200))
def test_another_body_or_secret_does_not(body: bytes, other: bytes) -> None:
    h = signed_headers(SECRET, body, now=NOW)
    ts, sig = h[TIMESTAMP_HEADER], h[SIGNATURE_HEADER]
    if other != body:
        assert not verify(SECRET, other, ts, sig, now=NOW)
    assert not verify(SECRET + "x", body, ts, sig, now=NOW)
    assert not verify(SECRET, body, str(int(ts) + 1), sig, now=NOW)


def test_old_missing_or_malformed_stamps_do_not() -> None:
    h = signed_headers(SECRET, b"{}", now=NOW)
    ts, sig = h[TIMESTAMP_HEADER], h[SIGNATURE_HEADER]
    assert not verify(SECRET, b"{}", ts, sig, now=NOW + 301)  # a replay, later
    assert not verify(SECRET, b"{}", ts, sig, now=NOW - 301)
    for bad_ts, bad_sig in ((None, sig), (ts, None), ("-1", sig), ("1e9", sig), ("9" * 13, sig)):
        assert not verify(SECRET, b"{}", bad_ts, bad_sig, now=NOW)
