"""A rule decision names every item it touched: GET /v1/decisions/{rec_id} pages them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast
from urllib.parse import parse_qs

import pytest
from fastapi.testclient import TestClient

from shelfwise.api import create_app
from shelfwise.catalog import Product
from shelfwise.config import Settings
from shelfwise.dashboard.panels.decisions import decisions_panel
from shelfwise.dashboard.slots import Panel, PanelCell, SlotParams
from shelfwise.rules import parse_rule
from shelfwise.runtime import Runtime
from tests.conftest import headers

READ = headers("read")
BULK = 210  # products of the suppressed brand: far more than one old trace listed (50)


@pytest.fixture
def shop(settings: Settings) -> Iterator[tuple[TestClient, Runtime]]:
    rt = Runtime.open(settings)
    rows = [
        {
            "product_id": f"B{i}" if i < BULK else f"K{i}",
            "title": f"Lamp {i}",
            "category_path": "lighting/lamps",
            "brand": "Bulk" if i < BULK else "Keep",
            "price": 10.0 + i,
            "stock_qty": 3,
        }
        for i in range(BULK + 30)
    ]
    rt.catalog.upsert([Product.model_validate(r) for r in rows])
    rule = {"id": "no-bulk", "type": "suppress", "reason": "supplier dispute", "values": ["Bulk"]}
    rt.rules.store.save(parse_rule(rule), who="test", why="paging test")
    rt.snapshot.load()
    try:
        with TestClient(create_app(settings, rt), raise_server_exceptions=False) as c:
            yield c, rt
    finally:
        rt.close()


def _served(client: TestClient, rt: Runtime) -> str:
    """A served slate's rec_id, its decision written to the store (not just queued)."""
    r = client.get("/v1/recommendations?placement=home&k=5", headers=READ)
    assert r.status_code == 200, r.text
    assert not any(i["product_id"].startswith("B") for i in r.json()["items"])
    rt.decisions.flush()
    return str(r.json()["rec_id"])


def _rule(d: dict[str, Any]) -> dict[str, Any]:
    (rule,) = [r for r in d["trace"]["rules"] if r["rule"] == "no-bulk"]
    return rule


def test_every_item_a_rule_removed_is_retrievable_across_pages(
    shop: tuple[TestClient, Runtime],
) -> None:
    client, rt = shop
    rec_id = _served(client, rt)
    # The default page holds a whole normal trace: every removed id at once.
    whole = _rule(client.get(f"/v1/decisions/{rec_id}", headers=READ).json())
    count = whole["count"]
    assert count > 50
    assert len(whole["items"]) == count == len(set(whole["items"]))
    assert whole["items_offset"] == 0 and whole["items_next"] is None
    assert all(i.startswith("B") for i in whole["items"])
    # Pages of 37: every id once, in the same order, the cursor ending with null.
    got: list[str] = []
    offset: int | None = 0
    pages = 0
    while offset is not None:
        r = client.get(
            f"/v1/decisions/{rec_id}",
            params={"items_offset": offset, "items_limit": 37},
            headers=READ,
        )
        assert r.status_code == 200, r.text
        rule = _rule(r.json())
        assert rule["count"] == count and rule["items_offset"] == offset
        assert len(rule["items"]) == min(37, count - offset)
        got += rule["items"]
        offset = rule["items_next"]
        pages += 1
    assert got == whole["items"] and pages == -(-count // 37)
    # Past the end: an empty page, the count still exact.
    r = client.get(f"/v1/decisions/{rec_id}", params={"items_offset": 10_000}, headers=READ)
    assert _rule(r.json())["items"] == [] and _rule(r.json())["count"] == count


@pytest.mark.parametrize(
    "params",
    [
        {"items_limit": 0},
        {"items_limit": -1},
        {"items_limit": 10_001},
        {"items_limit": "many"},
        {"items_offset": -1},
        {"items_offset": "1e3"},
        {"items_offset": 10**10},
        {"items_limit": ""},
        {"items_limit": "NaN"},
        {"items_limit": "true"},
        {"items_offset": "1.5"},
        {"items_offset": "99999999999999999999999"},
        {"items_limit": " 5\x00"},
    ],
)
def test_bad_paging_values_are_a_422_with_a_code(
    shop: tuple[TestClient, Runtime], params: dict[str, Any]
) -> None:
    client, rt = shop
    rec_id = _served(client, rt)
    r = client.get(f"/v1/decisions/{rec_id}", params=params, headers=READ)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_request"
    (detail,) = r.json()["error"]["details"]
    assert detail["field"] == f"query.{next(iter(params))}" and detail["code"]


def test_the_dashboard_decision_page_shows_the_count_and_pages_every_item(
    shop: tuple[TestClient, Runtime],
) -> None:
    client, rt = shop
    rec_id = _served(client, rt)
    expected = _rule(client.get(f"/v1/decisions/{rec_id}", headers=READ).json())["items"]
    now = datetime.now(UTC)

    def panel(**query: str) -> Panel:
        params = SlotParams(now - timedelta(days=1), now, {"rec_id": rec_id, **query})
        return decisions_panel(rt, params)

    first = panel()
    (rules,) = [t for t in first.tables if t.testid == "rules-applied"]
    (row,) = [r for r in rules.rows if r[0] == "no-bulk"]
    count = row[2]
    assert isinstance(count, PanelCell) and count.value == len(expected) > 50
    assert count.href and parse_qs(count.href[1:]) == {"rec_id": [rec_id], "rule": ["0"]}
    # Follow the "next" links from the count's link to the end: every id once, in order.
    query = {k: v[0] for k, v in parse_qs(count.href[1:]).items()}
    got: list[str] = []
    while True:
        page = panel(**query)
        assert not page.error
        (listed,) = [t for t in page.tables if t.testid == "rule-items"]
        got += [str(cast(PanelCell, r[1]).text) for r in listed.rows]
        nxt = [a for a in page.links if a.testid == "rule-items-next"]
        if not nxt:
            break
        query = {k: v[0] for k, v in parse_qs(nxt[0].href[1:]).items()}
    assert got == expected
    assert "Previous items" in [a.text for a in page.links]
    for bad in ({"rule": "x"}, {"rule": "7"}, {"rule": "0", "items_offset": "-3"}):
        assert panel(**bad).error


def test_openapi_documents_the_paging_and_its_422(shop: tuple[TestClient, Runtime]) -> None:
    client, _ = shop
    op = client.get("/openapi.json").json()["paths"]["/v1/decisions/{rec_id}"]["get"]
    got = {p["name"]: p["schema"] for p in op["parameters"] if p["in"] == "query"}
    assert (got["items_offset"]["minimum"], got["items_offset"]["default"]) == (0, 0)
    limit = got["items_limit"]
    assert (limit["minimum"], limit["maximum"], limit["default"]) == (1, 10_000, 1000)
    assert "invalid_request" in op["responses"]["422"]["description"]


def test_the_dashboard_page_renders_the_list_and_its_links(
    shop: tuple[TestClient, Runtime],
) -> None:
    client, rt = shop
    rec_id = _served(client, rt)
    expected = _rule(client.get(f"/v1/decisions/{rec_id}", headers=READ).json())["items"]
    signed_in = client.post(
        "/dashboard/login",
        data={"api_key": headers("merchandiser")["X-API-Key"], "next": "/dashboard"},
    )
    assert signed_in.status_code in (200, 303), signed_in.text
    query = {"rec_id": rec_id, "rule": "0", "items_offset": "100"}
    html = client.get("/dashboard/decisions", params=query).text
    assert f"101 to {min(200, len(expected))} of {len(expected)}" in html, html[-3000:]
    assert expected[100] in html and "Previous items" in html
    assert ("Next items" in html) == (len(expected) > 200)
    first = client.get("/dashboard/decisions", params={**query, "items_offset": "0"}).text
    assert f"1 to 100 of {len(expected)}" in first and "Next items" in first
    assert "Previous items" not in first and expected[99] in first
    bad = client.get("/dashboard/decisions", params={"rec_id": rec_id, "rule": "x"})
    assert bad.status_code == 200 and 'role="alert"' in bad.text
