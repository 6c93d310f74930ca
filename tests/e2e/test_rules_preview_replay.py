"""Impact preview over the decision log: serve slates, then replay them with a draft rule."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from shelfwise.config import Settings
from tests.conftest import headers
from tests.e2e.server import lamp_shop_client


@pytest.fixture
def client(sqlite_settings: Settings) -> Iterator[TestClient]:
    with lamp_shop_client(sqlite_settings) as c:
        yield c


def test_preview_replays_the_served_slates(client: TestClient) -> None:
    merch = headers("merchandiser")
    r = client.post("/v1/rules/preview", json={"rules": []}, headers=merch)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "preview_no_requests"
    served = [
        client.get("/v1/recommendations?placement=home&k=4", headers=headers("read")).json()
        for _ in range(3)
    ]
    assert all(s["items"] for s in served)
    gleam_shown = sum(1 for s in served for i in s["items"] if i["brand"] == "Gleam")
    assert gleam_shown > 0
    draft = {
        "id": "no-gleam",
        "type": "suppress",
        "reason": "preview a pause",
        "attribute": "brand",
        "values": ["Gleam"],
    }
    r = client.post("/v1/rules/preview", json={"rules": [draft], "k": 4}, headers=merch)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["requests"] == 3
    assert report["slates_changed"] == 3
    removed = {x["product_id"] for x in report["removed_most_often"]}
    assert removed
    assert all(int(pid[1:]) % 2 == 1 for pid in removed)  # only Gleam (odd ids) removed
    # Nothing was saved: the live rulebook is unchanged.
    listed = client.get("/v1/rules", headers=merch).json()
    assert "no-gleam" not in {rule["id"] for rule in listed["rules"]}
