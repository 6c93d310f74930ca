"""Customer tokens: round trip, expiry, tampering, another person, another key; and the
construction docs/storefront.md gives other languages, rebuilt here with the stdlib."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shelfwise.access import Principal
from shelfwise.access.customers import CustomerTokenError, CustomerTokens, key_secret
from shelfwise.api.customers import check_events, check_slate
from shelfwise.pipeline import RecommendRequest

NOW = 1_800_000_000.0
KEY = "0123456789abcdef"
TOKENS = CustomerTokens("installation-secret", max_seconds=86_400)


def _code(token: str, key_id: str = KEY, now: float = NOW) -> str:
    with pytest.raises(CustomerTokenError) as e:
        TOKENS.customer(key_id, token, now=now)
    return e.value.code


@given(
    customer=st.text(st.characters(codec="utf-8"), min_size=1, max_size=128),
    ttl=st.integers(1, 86_400),
)
def test_a_token_names_its_customer_until_it_expires(customer: str, ttl: int) -> None:
    token = TOKENS.mint(KEY, customer, ttl, now=NOW)
    assert token.isascii()
    assert TOKENS.customer(KEY, token, now=NOW) == customer
    assert TOKENS.customer(KEY, token, now=NOW + ttl - 1) == customer
    assert _code(token, now=NOW + ttl) == "customer_token_expired"


def test_tampering_another_key_or_another_secret_is_refused() -> None:
    token = TOKENS.mint(KEY, "C17", 600, now=NOW)
    head, customer, expires, sig = token.split(".")
    other = base64.urlsafe_b64encode(b"C18").rstrip(b"=").decode()
    assert _code(f"{head}.{other}.{expires}.{sig}") == "customer_token_invalid"
    assert _code(f"{head}.{customer}.{int(expires) + 3600}.{sig}") == "customer_token_invalid"
    assert (
        _code(token[:-2] + ("AA" if not token.endswith("AA") else "BB")) == "customer_token_invalid"
    )
    assert _code(token, key_id="fedcba9876543210") == "customer_token_invalid"
    forged = CustomerTokens("another-installation").mint(KEY, "C17", 600, now=NOW)
    assert _code(forged) == "customer_token_invalid"
    for junk in ("", "v1", "v1.x.y", "v1..1.", "é" * 10, "x" * 600):
        assert _code(junk) == "customer_token_invalid"


def test_a_token_living_longer_than_allowed_is_refused() -> None:
    token = TOKENS.mint(KEY, "C17", 86_401, now=NOW)
    assert _code(token) == "customer_token_invalid"


def test_the_documented_construction_is_what_the_server_accepts() -> None:
    """What a backend in any language does (docs/storefront.md), with hmac alone."""
    secret = key_secret("installation-secret", KEY)
    assert secret.startswith("swc_")

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    value = f"v1.{b64('Zoë-42'.encode())}.{int(NOW) + 900}"
    sig = hmac.new(secret.encode(), value.encode(), hashlib.sha256).digest()
    assert TOKENS.customer(KEY, f"{value}.{b64(sig)}", now=NOW) == "Zoë-42"
    assert TOKENS.mint(KEY, "Zoë-42", 900, now=NOW) == f"{value}.{b64(sig)}"


STOREFRONT = Principal("web", frozenset({"storefront"}), key_id=KEY)


class _Known:
    def __init__(self, *ids: str) -> None:
        self.ids = set(ids)

    def __contains__(self, any_id: str) -> bool:
        return any_id in self.ids


def _check(req: RecommendRequest, token: str | None, resolved: str, known: _Known) -> str | None:
    asked, guard = check_slate(STOREFRONT, req, token, lambda: TOKENS, known)  # type: ignore[arg-type]
    if asked.person is not None:
        guard(resolved)
    return asked.person


def test_who_a_storefront_request_may_be_for() -> None:
    req = RecommendRequest(placement="home")
    known = _Known("C17")
    assert _check(req, None, "", known) is None
    anon = req.model_copy(update={"person": "anon-1"})
    assert _check(anon, None, "anon-1", known) == "anon-1"
    assert _check(anon, None, "anonymous:anon-1", known) == "anon-1"  # stitched, no customer
    with pytest.raises(CustomerTokenError, match="customer") as e:
        _check(anon, None, "customer:C17", known)  # stitched to a customer
    assert e.value.code == "customer_token_required"
    c17 = req.model_copy(update={"person": "C17"})
    with pytest.raises(CustomerTokenError) as e:
        _check(c17, None, "C17", known)  # an unlinked customer id
    assert e.value.code == "customer_token_required"
    token = TOKENS.mint(KEY, "C17", 600)
    assert _check(req, token, "C17", known) == "C17"
    assert _check(c17, token, "customer:C17", known) == "C17"
    with pytest.raises(CustomerTokenError) as e:
        _check(req, TOKENS.mint(KEY, "C 17\n", 600), "C 17", known)  # no id a request takes
    assert e.value.code == "customer_token_invalid"
    with pytest.raises(CustomerTokenError) as e:
        _check(anon, token, "anon-1", known)
    assert e.value.code == "customer_token_mismatch"
    with pytest.raises(CustomerTokenError) as e:
        _check(c17, token, "customer:C01", known)  # merged under another customer
    assert e.value.code == "customer_token_mismatch"


def test_events_naming_a_customer_need_that_customers_token() -> None:
    anonymous = [{"anonymous_id": "a", "customer_id": None}, {"customer_id": "guest"}, "junk"]
    check_events(STOREFRONT, anonymous, None, lambda: TOKENS)
    named = [*anonymous, {"customer_id": "C17"}]
    with pytest.raises(CustomerTokenError) as e:
        check_events(STOREFRONT, named, None, lambda: TOKENS)
    assert e.value.code == "customer_token_required"
    check_events(STOREFRONT, named, TOKENS.mint(KEY, "C17", 60), lambda: TOKENS)
    with pytest.raises(CustomerTokenError) as e:
        check_events(
            STOREFRONT, [*named, {"customer_id": 18}], TOKENS.mint(KEY, "C17", 60), lambda: TOKENS
        )
    assert e.value.code == "customer_token_mismatch"
