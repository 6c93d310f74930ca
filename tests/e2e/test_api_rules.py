"""The rules API through the real app, and the rules CLI as a subprocess."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shelfwise.api import create_app
from shelfwise.config import Settings
from tests.conftest import headers
from tests.e2e.server import run_cli, settings_env

PRODUCTS = [
    {
        "product_id": "lamp",
        "title": "Lamp",
        "brand": "Lumo",
        "category_path": "decor/premium",
        "price": 200.0,
        "stock_qty": 3,
    },
    {
        "product_id": "hook",
        "title": "Hook",
        "brand": "Volt",
        "category_path": "home/utility",
        "price": 5.0,
        "stock_qty": 9,
        "tags": ["utility"],
    },
    {
        "product_id": "rug",
        "title": "Rug",
        "brand": "Weave",
        "category_path": "decor/textiles",
        "price": 180.0,
        "stock_qty": 2,
    },
]
RULE = {
    "id": "premium-decor-no-utility",
    "type": "pairing",
    "reason": "premium decor pages show no utility items",
    "scope": {"placements": ["product_page"]},
    "context": {"attr": "category", "op": "prefix", "value": "decor/premium"},
    "forbid": {"attr": "tags", "op": "contains", "value": "utility"},
}
M = headers("merchandiser")


@pytest.fixture
def client(sqlite_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(sqlite_settings), raise_server_exceptions=False) as c:
        assert c.put("/v1/products", json={"products": PRODUCTS}, headers=M).status_code == 200
        yield c


def test_crud_with_etags_and_a_409_on_a_stale_write(client: TestClient) -> None:
    assert client.get("/v1/rules", headers=headers("read")).status_code == 403
    created = client.post(
        "/v1/rules", json=RULE, headers={**M, "X-Change-Reason": "brand guidelines"}
    )
    assert created.status_code == 201 and created.headers["etag"] == '"1"'
    assert created.json()["author"] == "merchandiser"
    got = client.get(f"/v1/rules/{RULE['id']}", headers=M)
    assert got.headers["etag"] == '"1"'
    changed = {**RULE, "priority": 3}
    ok = client.put(f"/v1/rules/{RULE['id']}", json=changed, headers={**M, "If-Match": '"1"'})
    assert ok.status_code == 200 and ok.json()["version"] == 2
    stale = client.put(
        f"/v1/rules/{RULE['id']}", json={**RULE, "priority": 9}, headers={**M, "If-Match": '"1"'}
    )
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "stale_version"
    unversioned = client.put(f"/v1/rules/{RULE['id']}", json=RULE, headers=M)
    assert unversioned.json()["error"]["code"] == "version_required"
    history = client.get(f"/v1/rules/{RULE['id']}/history", headers=M).json()
    assert [(h["version"], h["action"], h["why"]) for h in history] == [
        (1, "create", "brand guidelines"),
        (2, "update", "premium decor pages show no utility items"),
    ]
    assert history[1]["diff"] == {"priority": [0, 3]}
    restored = client.post(
        f"/v1/rules/{RULE['id']}/restore", json={"version": 1, "why": "undo"}, headers=M
    )
    assert restored.json()["version"] == 3 and restored.json()["priority"] == 0
    disabled = client.post(f"/v1/rules/{RULE['id']}/disable", headers=M).json()
    assert disabled["enabled"] is False
    listing = client.get("/v1/rules", headers=M).json()
    assert listing["rulebook_version"] >= 4 and [r["id"] for r in listing["rules"]] == [RULE["id"]]
    assert (
        client.delete(f"/v1/rules/{RULE['id']}", headers={**M, "If-Match": '"4"'}).status_code
        == 204
    )
    assert (
        client.get(f"/v1/rules/{RULE['id']}", headers=M).json()["error"]["code"] == "rule_not_found"
    )


def test_invalid_rules_get_a_clear_422(client: TestClient) -> None:
    bad = client.post(
        "/v1/rules", json={**RULE, "forbid": {"attr": "colour", "value": "red"}}, headers=M
    )
    assert bad.status_code == 422 and "unknown attribute 'colour'" in str(bad.json())
    client.post(
        "/v1/rules",
        json={
            "id": "no-utility",
            "type": "exclude",
            "reason": "r",
            "when": {"attr": "tags", "op": "contains", "value": "utility"},
        },
        headers=M,
    )
    pin = client.post(
        "/v1/rules",
        json={"id": "pin-hook", "type": "pin", "reason": "r", "product_id": "hook", "position": 1},
        headers=M,
    )
    err = pin.json()["error"]
    assert pin.status_code == 422 and err["code"] == "rule_invalid"
    assert err["details"] == [
        {
            "rules": ["no-utility", "pin-hook"],
            "message": "pin 'pin-hook' places 'hook', which exclude rule 'no-utility' removes",
        }
    ]


def test_preview_endpoint(client: TestClient) -> None:
    body = {
        "rules": [RULE],
        "k": 2,
        "requests": [
            {
                "placement": "product_page",
                "now": "2026-11-27T12:00:00Z",
                "context_items": ["lamp"],
                "candidates": [
                    {"product_id": "hook", "score": 0.9},
                    {"product_id": "rug", "score": 0.5},
                ],
            },
            {"placement": "home", "now": "2026-11-27T12:00:00Z", "candidates": ["hook"]},
        ],
    }
    r = client.post("/v1/rules/preview", json=body, headers=M)
    assert r.status_code == 200, r.text
    got = r.json()
    # Given requests run through the pipeline serving now (no bundle: degraded mode)
    # with the given candidates; the draft removes the hook from the product page.
    assert (got["requests"], got["slates_changed"], got["share_changed"]) == (2, 1, 0.5)
    assert got["added_most_often"] == []
    hook = got["removed_most_often"]
    assert [(i["product_id"], i["title"], i["count"]) for i in hook] == [("hook", "Hook", 1)]
    assert [(g["placement"], g["slates_changed"]) for g in got["by_placement"]] == [
        ("home", 0),
        ("product_similar", 1),
    ]
    # Given requests carry no rec_id: no purchase to measure a rate on.
    assert got["money"]["change"] is None and got["money"]["currency"] == "EUR"
    assert got["not_replayed"] == []
    nowhere = {**body, "requests": [{"placement": "nowhere", "candidates": ["hook"]}]}
    r = client.post("/v1/rules/preview", json=nowhere, headers=M)
    assert r.status_code == 422 and r.json()["error"]["code"] == "placement_unknown"
    assert "product_page" in r.json()["error"]["message"]


RULE_FILE = """
rules:
  - id: premium-decor-no-utility
    type: pairing
    reason: premium decor pages show no utility items
    scope: {placements: [product_page]}
    context: {attr: category, op: prefix, value: decor/premium}
    forbid: {attr: tags, op: contains, value: utility}
tests:
  - name: no hooks beside the lamp
    request: {placement: product_page, context_items: [lamp], candidates: [hook, rug]}
    expect: {slate: [rug], removed_by: {hook: premium-decor-no-utility}}
"""


def test_cli_test_apply_list_history_disable(
    sqlite_settings: Settings, client: TestClient, tmp_path: Path
) -> None:
    env = settings_env(sqlite_settings)
    path = tmp_path / "rules.yaml"
    path.write_text(RULE_FILE)
    tested = run_cli(["rules", "test", str(path), "--json"], env)
    assert tested.returncode == 0, tested.stderr
    applied = run_cli(
        ["rules", "apply", str(path), "--who", "ana", "--why", "launch", "--json"], env
    )
    assert applied.returncode == 0, applied.stderr
    assert '"created": [\n    "premium-decor-no-utility"\n  ]' in applied.stdout
    assert client.get(f"/v1/rules/{RULE['id']}", headers=M).json()["author"] == "ana"
    listed = run_cli(["rules", "list", "--json"], env)
    assert "premium-decor-no-utility" in listed.stdout
    assert run_cli(["rules", "disable", RULE["id"], "--why", "pause"], env).returncode == 0
    history = run_cli(["rules", "history", RULE["id"], "--json"], env)
    assert '"action": "disable"' in history.stdout and '"why": "pause"' in history.stdout
    path.write_text(RULE_FILE.replace("slate: [rug]", "slate: [hook]"))
    failing = run_cli(["rules", "test", str(path)], env)
    assert failing.returncode == 1 and "FAIL" in failing.stdout
