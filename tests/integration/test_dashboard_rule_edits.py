"""The dashboard's rule forms on both backends: every rule type is created through its
form and lands in the store and its audit under the signed-in key; a refused form
shows the API's codes and messages; a stale edit, toggle, delete or restore is
refused and changes nothing; POSTs need the form token and the dashboard's origin."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from shelfwise.api import create_app
from shelfwise.config import Settings
from shelfwise.dashboard.ruleform import RULE_TYPES
from shelfwise.dashboard.session import CSRF_FIELD
from shelfwise.rules.model import rule_body
from shelfwise.runtime import Runtime
from tests.conftest import KEYS, headers
from tests.shop_fixture import products

# One valid form per rule type, and the body the API would store for it.
FORMS: dict[str, tuple[dict[str, str], dict[str, Any]]] = {
    "exclude": (
        {"when": "{attr: price, op: lt, value: 5}"},
        {"when": {"attr": "price", "op": "lt", "value": 5}},
    ),
    "require_in_stock": ({"min_qty": "3"}, {"min_qty": 3}),
    "suppress": (
        {"attribute": "brand", "values": "Acme, Globex"},
        {"attribute": "brand", "values": ["Acme", "Globex"]},
    ),
    "pairing": (
        {"on": "cart", "forbid": '{"attr": "category", "op": "prefix", "value": "toys"}'},
        {"on": "cart", "forbid": {"attr": "category", "op": "prefix", "value": "toys"}},
    ),
    "price_relation": (
        {"anchor": "viewed", "min_ratio": "0.5", "max_ratio": "2"},
        {"anchor": "viewed", "min_ratio": 0.5, "max_ratio": 2.0},
    ),
    "margin_floor": ({"min_band": "medium", "unknown": "remove"}, {"min_band": "medium"}),
    "boost": (
        {"when": "{attr: brand, op: eq, value: Acme}", "multiply": "1.5", "add": "0"},
        {"multiply": 1.5},
    ),
    "bury": ({"when": "{attr: stock, op: lt, value: 3}", "multiply": "0.5"}, {"multiply": 0.5}),
    "dedupe_variants": ({"include_context": "1"}, {"include_context": True}),
    "cap": ({"attribute": "brand", "max_items": "2"}, {"attribute": "brand", "max_items": 2}),
    "pin": ({"product_id": "KI1", "position": "2"}, {"product_id": "KI1", "position": 2}),
}


@pytest.fixture
def dash(settings: Settings) -> Iterator[tuple[TestClient, Runtime, str]]:
    """A signed-in merchandiser's dashboard: (client, runtime, form token)."""
    runtime = Runtime.open(settings)
    runtime.catalog.upsert(products())  # a pin names a product the catalog holds
    runtime.snapshot.load()
    try:
        with TestClient(create_app(settings, runtime), follow_redirects=False) as c:
            assert (
                c.post("/dashboard/login", data={"api_key": KEYS["merchandiser"]}).status_code
                == 303
            )
            yield c, runtime, _token(c.get("/dashboard/rules").text)
    finally:
        runtime.close()


def _token(page: str) -> str:
    found = re.search(rf'name="{CSRF_FIELD}" value="([^"]+)"', page)
    assert found, page[-2000:]
    return found.group(1)


def _post(c: TestClient, token: str, path: str, form: dict[str, str]) -> Any:
    return c.post(path, data={**form, CSRF_FIELD: token})


def _create(c: TestClient, token: str, rule_type: str, rule_id: str, **extra: str) -> Any:
    fields, _ = FORMS[rule_type]
    form = {"type": rule_type, "id": rule_id, "version": "0", "reason": f"a {rule_type} rule"}
    return _post(c, token, "/dashboard/rules/edit", {**form, "enabled": "1", **fields, **extra})


def test_every_rule_type_is_covered() -> None:
    assert set(FORMS) == set(RULE_TYPES)


@pytest.mark.parametrize("rule_type", sorted(FORMS))
def test_each_rule_type_is_created_through_its_form(
    dash: tuple[TestClient, Runtime, str], rule_type: str
) -> None:
    c, runtime, token = dash
    page = c.get(f"/dashboard/rules/edit?type={rule_type}")
    assert page.status_code == 200 and 'data-testid="rule-form"' in page.text
    for f in FORMS[rule_type][0]:
        assert f'name="{f}"' in page.text, f
    rule_id = f"t-{rule_type.replace('_', '-')}"
    r = _create(c, token, rule_type, rule_id, **{"placement.home": "1", "why": "from the form"})
    assert r.status_code == 303, re.findall(r"<li data-code.*?</li>", r.text)
    assert r.headers["location"] == f"/dashboard/rules?rule={rule_id}&done=create"
    stored = runtime.rules.store.get(rule_id)
    body = rule_body(stored)
    assert body["type"] == rule_type and stored.version == 1
    assert body["scope"]["placements"] == ["home"]
    for key, value in FORMS[rule_type][1].items():
        assert body[key] == value, key
    (entry,) = runtime.rules.store.history(rule_id)
    assert (entry.action, entry.who, entry.why) == ("create", "merchandiser", "from the form")
    shown = c.get(r.headers["location"]).text
    assert f"Rule {rule_id} created: now at version 1." in shown
    # The stored rule opens in the editor with its values, and saves back unchanged.
    edit = c.get(f"/dashboard/rules/edit?rule={rule_id}").text
    assert 'data-testid="form-version">1<' in edit
    values = dict(
        re.findall(
            r'<input type="(?:hidden|text|number)"[^>]* name="([^"]+)" value="([^"]*)"', edit
        )
    )
    values.update((k, "1") for k in re.findall(r'name="([^"]+)" value="1" checked', edit))
    values.update(re.findall(r'<select name="([^"]+)">.*?<option value="([^"]+)" selected', edit))
    again = _post(
        c,
        token,
        "/dashboard/rules/edit",
        {k: html.unescape(v) for k, v in values.items() if k != CSRF_FIELD},
    )
    assert again.status_code == 303, again.text[-3000:]
    assert rule_body(runtime.rules.store.get(rule_id)) == body


def test_a_refused_form_shows_the_api_codes_and_messages(
    dash: tuple[TestClient, Runtime, str],
) -> None:
    c, runtime, token = dash
    bad = {
        "type": "exclude",
        "id": "x",
        "reason": "r",
        "when": '{"attr": "price", "op": "nope", "value": 5}',
    }
    api = c.post(
        "/v1/rules",
        json={
            "type": "exclude",
            "id": "x",
            "reason": "r",
            "when": {"attr": "price", "op": "nope", "value": 5},
        },
        headers=headers("merchandiser"),
    ).json()["error"]
    assert api["code"] == "invalid_request"
    page = _post(c, token, "/dashboard/rules/edit", {**bad, "version": "0"})
    assert page.status_code == 200 and 'role="alert"' in page.text
    text = html.unescape(page.text)
    assert f'data-code="{api["code"]}"' in text and api["message"] in text
    for d in api["details"]:
        assert f'data-code="{d["code"]}"' in text and d["message"] in text
    # The values typed stay in the form.
    assert '"op": "nope"' in text
    assert runtime.rules.store.list_rules() == []
    unreadable = _post(
        c, token, "/dashboard/rules/edit", {**bad, "version": "0", "when": "{attr: [unclosed"}
    )
    assert 'data-code="invalid_yaml"' in unreadable.text
    # The store's own refusals carry their codes too.
    assert _create(c, token, "pin", "p").status_code == 303
    again = _create(c, token, "pin", "p")
    assert again.status_code == 200 and 'data-code="rule_exists"' in again.text


def test_a_stale_edit_is_refused_and_overwrites_nothing(
    dash: tuple[TestClient, Runtime, str],
) -> None:
    c, runtime, token = dash
    assert _create(c, token, "cap", "cap-brand").status_code == 303
    store = runtime.rules.store
    # Someone else saves version 2 through the API while the form shows version 1.
    mine = store.get("cap-brand")
    theirs = c.put(
        "/v1/rules/cap-brand",
        json={**rule_body(mine), "max_items": 4},
        headers={**headers("merchandiser"), "If-Match": '"1"'},
    )
    assert theirs.status_code == 200
    form = {
        "type": "cap",
        "id": "cap-brand",
        "version": "1",
        "reason": "mine",
        "attribute": "brand",
        "max_items": "1",
    }
    r = _post(c, token, "/dashboard/rules/edit", form)
    assert r.status_code == 200
    assert 'data-code="stale_version"' in r.text and "is at version 2, not 1" in r.text
    assert 'data-testid="reload"' in r.text
    now = store.get("cap-brand")
    assert (now.version, now.max_items, now.reason) == (2, 4, "a cap rule")  # type: ignore[union-attr]


def test_toggle_delete_and_restore_at_the_shown_version(
    dash: tuple[TestClient, Runtime, str],
) -> None:
    c, runtime, token = dash
    store = runtime.rules.store
    assert _create(c, token, "require_in_stock", "stock").status_code == 303

    def change(action: str, version: int, **extra: str) -> Any:
        form = {"action": action, "rule": "stock", "version": str(version), **extra}
        return _post(c, token, "/dashboard/rules/change", form)

    page = c.get("/dashboard/rules").text
    assert 'data-testid="disable-stock"' in page and 'data-testid="edit-stock"' in page
    assert change("disable", 1).status_code == 303
    assert store.get("stock").enabled is False and store.get("stock").version == 2
    stale = change("enable", 1)
    assert stale.status_code == 200 and "stale_version" in stale.text
    assert store.get("stock").enabled is False and store.get("stock").version == 2
    assert change("enable", 2).status_code == 303
    assert store.get("stock").enabled is True
    # Restore the disabled version 2, from the rule's history page.
    history = c.get("/dashboard/rules?rule=stock").text
    assert 'data-testid="restore-stock-1"' in history and 'data-testid="restore-stock-2"' in history
    assert 'data-testid="restore-stock-3"' not in history  # the current version
    assert change("restore", 2, restore_version="2").status_code == 200  # stale: it is at 3
    assert store.get("stock").version == 3
    assert change("restore", 3, restore_version="2").status_code == 303
    restored = store.get("stock")
    assert (restored.version, restored.enabled) == (4, False)
    assert change("delete", 3).status_code == 200  # stale
    assert change("delete", 4).status_code == 303
    assert [r.id for r in store.list_rules()] == []
    # A deleted rule keeps its history, and comes back from it.
    gone = c.get("/dashboard/rules?rule=stock").text
    assert "History of stock" in gone and 'data-testid="restore-stock-1"' in gone
    assert change("restore", 0, restore_version="1").status_code == 303
    back = store.get("stock")
    assert (back.version, back.enabled) == (6, True)
    actions = [(e.action, e.who) for e in store.history("stock")]
    assert actions == [
        ("create", "merchandiser"),
        ("disable", "merchandiser"),
        ("enable", "merchandiser"),
        ("restore", "merchandiser"),
        ("delete", "merchandiser"),
        ("restore", "merchandiser"),
    ]
    assert change("explode", 6).status_code == 200
    assert "change_unknown" in change("explode", 6).text


def test_rule_posts_need_the_token_and_the_dashboard_origin(
    dash: tuple[TestClient, Runtime, str],
) -> None:
    c, runtime, token = dash
    form = {
        "type": "pin",
        "id": "p",
        "version": "0",
        "reason": "r",
        "product_id": "x",
        "position": "1",
    }
    no_token = c.post("/dashboard/rules/edit", data=form)
    assert no_token.status_code == 403 and no_token.json()["error"]["code"] == "csrf_token_invalid"
    cross = c.post(
        "/dashboard/rules/change",
        data={"action": "delete", "rule": "p", "version": "1", CSRF_FIELD: token},
        headers={"Origin": "https://evil.example"},
    )
    assert cross.status_code == 403 and cross.json()["error"]["code"] == "csrf_origin_mismatch"
    assert runtime.rules.store.list_rules() == []
    c.cookies.clear()
    signed_out = c.post("/dashboard/rules/edit", data={**form, CSRF_FIELD: token})
    assert signed_out.status_code == 303 and "/dashboard/login" in signed_out.headers["location"]
    assert runtime.rules.store.list_rules() == []
