"""A storefront (public) key reads a customer's slate only with that customer's token.

Over HTTP (the app in process) on both backends: without the fix, anyone holding the
page's key could ask for ``person=<a customer id>`` and read what they bought."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shelfwise.access.customers import CustomerTokens
from shelfwise.api import create_app
from shelfwise.config import Settings, hash_key
from tests.conftest import KEYS, headers

STOREFRONT = {"X-API-Key": KEYS["storefront"]}
KEY_ID = hash_key(KEYS["storefront"])[:16]
CUSTOMER = "C-1001"
OTHER = "C-2002"


def _event(n: int, kind: str, anonymous: str, **more: Any) -> dict[str, Any]:
    event = {
        "event_id": f"e-ct-{n}",
        "type": kind,
        "occurred_at": "2026-11-01T12:00:00Z",
        "anonymous_id": anonymous,
        "session_id": f"s-{anonymous}",
        **more,
    }
    if kind == "page_view":
        event["page_type"] = "home"
    return event


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        # The store's backend: a customer who signed in (the login links the browser's
        # anonymous id to them), and one whose events only name the customer id.
        batch = [
            _event(1, "login", "anon-signed-in", customer_id=CUSTOMER),
            _event(2, "page_view", "anon-other", customer_id=OTHER),
        ]
        r = c.post("/v1/events", json=batch, headers=headers("ingest"))
        assert r.json()["accepted"] == 2, r.json()
        yield c


def _tokens(client: TestClient) -> CustomerTokens:
    tokens: CustomerTokens = client.app.state.runtime.customer_tokens()  # type: ignore[attr-defined]
    return tokens


def _slate(client: TestClient, query: str, **extra: str) -> Any:
    return client.get(
        f"/v1/recommendations?placement=home&{query}", headers={**STOREFRONT, **extra}
    )


def _code(r: Any) -> str:
    return str(r.json()["error"]["code"])


def _person_served(client: TestClient, r: Any) -> str | None:
    assert r.status_code == 200, r.text
    client.app.state.runtime.decisions.flush()  # type: ignore[attr-defined]
    d = client.get(f"/v1/decisions/{r.json()['rec_id']}", headers=headers("read"))
    assert d.status_code == 200, d.text
    person: str | None = d.json()["request"].get("person")
    return person


def test_a_customer_is_read_only_with_their_token(client: TestClient) -> None:
    for person in (CUSTOMER, OTHER, "anon-signed-in"):
        r = _slate(client, f"person={person}")
        assert r.status_code == 403, person
        assert _code(r) == "customer_token_required", person
    token = _tokens(client).mint(KEY_ID, CUSTOMER, 600)
    r = _slate(client, f"customer_token={token}")
    assert _person_served(client, r) == CUSTOMER
    r = _slate(client, f"person={CUSTOMER}", **{"X-Customer-Token": token})
    assert _person_served(client, r) == CUSTOMER
    r = client.post(
        f"/v1/recommendations?customer_token={token}",
        json={"placement": "home", "person": CUSTOMER},
        headers=STOREFRONT,
    )
    assert _person_served(client, r) == CUSTOMER
    r = client.post(
        "/v1/recommendations", json={"placement": "home", "person": CUSTOMER}, headers=STOREFRONT
    )
    assert (r.status_code, _code(r)) == (403, "customer_token_required")


def test_anonymous_ids_need_no_token(client: TestClient) -> None:
    r = _slate(client, "person=anon-never-signed-in&session=s-x")
    assert _person_served(client, r) == "anon-never-signed-in"
    assert _person_served(client, _slate(client, "")) is None


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("forged", "customer_token_invalid"),
        ("other_key", "customer_token_invalid"),
        ("tampered", "customer_token_invalid"),
        ("expired", "customer_token_expired"),
        ("too_long_lived", "customer_token_invalid"),
        ("other_person", "customer_token_mismatch"),
    ],
)
def test_bad_tokens_are_refused_with_their_code(client: TestClient, case: str, code: str) -> None:
    tokens = _tokens(client)
    person = CUSTOMER
    if case == "forged":
        token = CustomerTokens("not the server's secret").mint(KEY_ID, CUSTOMER, 600)
    elif case == "other_key":
        token = tokens.mint(hash_key("another-key")[:16], CUSTOMER, 600)
    elif case == "tampered":
        good = tokens.mint(KEY_ID, OTHER, 600).split(".")
        mine = tokens.mint(KEY_ID, CUSTOMER, 600).split(".")
        token = ".".join([mine[0], mine[1], mine[2], good[3]])
    elif case == "expired":
        token = tokens.mint(KEY_ID, CUSTOMER, 600, now=time.time() - 601)
    elif case == "too_long_lived":
        token = tokens.mint(KEY_ID, CUSTOMER, 2 * 86_400)
    else:
        token = tokens.mint(KEY_ID, CUSTOMER, 600)
        person = OTHER
    r = _slate(client, f"person={person}&customer_token={token}")
    assert (r.status_code, _code(r)) == (403, code), r.text


def test_read_and_admin_keys_are_unchanged(client: TestClient) -> None:
    for role in ("read", "admin"):
        r = client.get(
            f"/v1/recommendations?placement=home&person={CUSTOMER}", headers=headers(role)
        )
        assert _person_served(client, r) == CUSTOMER


def test_events_naming_a_customer_need_their_token(client: TestClient) -> None:
    """A login naming someone else's customer id would link the sender's anonymous id
    to them, and the sender could then read that customer's slate by their own id."""
    attack = [
        _event(10, "page_view", "anon-attacker"),
        _event(11, "login", "anon-attacker", customer_id=CUSTOMER),
    ]
    r = client.post("/v1/events", json=attack, headers=STOREFRONT)
    assert (r.status_code, _code(r)) == (403, "customer_token_required")
    token = _tokens(client).mint(KEY_ID, OTHER, 600)  # the attacker's own account
    r = client.post(f"/v1/events?customer_token={token}", json=attack, headers=STOREFRONT)
    assert (r.status_code, _code(r)) == (403, "customer_token_mismatch")
    # Nothing of the refused batches was stored (not even the page view), nothing linked.
    r = client.post("/v1/events", json=[attack[0]], headers=STOREFRONT)
    assert r.json()["accepted"] == 1
    r = _slate(client, "person=anon-attacker")
    assert _person_served(client, r) == "anon-attacker"
    # The customer's own browser, with their token: accepted and linked.
    token = _tokens(client).mint(KEY_ID, CUSTOMER, 600)
    mine = [_event(20, "login", "anon-new-browser", customer_id=CUSTOMER)]
    r = client.post("/v1/events", json=mine, headers={**STOREFRONT, "X-Customer-Token": token})
    assert r.json()["accepted"] == 1, r.text
    r = _slate(client, "person=anon-new-browser")
    assert (r.status_code, _code(r)) == (403, "customer_token_required")
    # Events naming no customer need no token, as before.
    r = client.post("/v1/events", json=[_event(30, "page_view", "anon-z")], headers=STOREFRONT)
    assert r.json()["accepted"] == 1
