"""Racing rule writes over HTTP against the real server on SQLite (where 10 deletes of one
version used to succeed up to 6 times): one 204, the others 409 ``stale_version``."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx

from shelfwise.config import Settings
from tests.conftest import headers
from tests.e2e.server import running_server, settings_env

MERCH = headers("merchandiser")
PRODUCT = {"product_id": "lamp", "title": "Lamp", "brand": "Lumo", "price": 20.0, "stock_qty": 3}
RULE = {"id": "no-lumo", "type": "suppress", "reason": "supplier dispute", "values": ["Lumo"]}


def test_ten_deletes_with_one_if_match_over_http(sqlite_settings: Settings) -> None:
    env = settings_env(sqlite_settings, SHELFWISE_LOG_LEVEL="warning")
    with running_server(env) as base, httpx.Client(base_url=base, timeout=30) as c:
        assert c.put("/v1/products", json={"products": [PRODUCT]}, headers=MERCH).status_code == 200
        for round_ in range(2):
            rule = {**RULE, "id": f"no-lumo-{round_}"}
            assert c.post("/v1/rules", json=rule, headers=MERCH).status_code == 201

            def delete(_: int, rule_id: str = rule["id"]) -> tuple[int, str | None]:
                with httpx.Client(base_url=base, timeout=30) as own:  # its own connection
                    r = own.delete(f"/v1/rules/{rule_id}", headers={**MERCH, "If-Match": '"1"'})
                return r.status_code, r.json()["error"]["code"] if r.content else None

            with ThreadPoolExecutor(10) as pool:
                outcomes = sorted(pool.map(delete, range(10)), key=str)
            assert outcomes == [(204, None)] + [(409, "stale_version")] * 9, outcomes
            history = c.get(f"/v1/rules/{rule['id']}/history", headers=MERCH).json()
            assert [e["action"] for e in history] == ["create", "delete"]
