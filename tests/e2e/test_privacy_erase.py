"""``DELETE /v1/people/{id}`` through the real app, and ``shelfwise people erase`` as a subprocess."""

from __future__ import annotations

from fastapi.testclient import TestClient

from shelfwise.api import create_app
from shelfwise.config import Settings
from tests.conftest import headers
from tests.e2e.server import json_of, run_cli, settings_env

T = "2026-11-01T12:00:00Z"


def _events(who: str) -> list[dict[str, object]]:
    return [
        {"type": "product_view", "event_id": f"{who}-v", "occurred_at": T,
         "anonymous_id": f"anon-{who}", "session_id": f"sess-{who}", "product_id": "P1"},
        {"type": "login", "event_id": f"{who}-l", "occurred_at": T,
         "anonymous_id": f"anon-{who}", "customer_id": f"cust-{who}", "session_id": f"sess-{who}"},
    ]  # fmt: skip


def test_erase_over_http_and_cli(sqlite_settings: Settings) -> None:
    with TestClient(create_app(sqlite_settings), raise_server_exceptions=False) as c:
        sent = c.post("/v1/events", json=_events("kim") + _events("lou"), headers=headers("ingest"))
        assert sent.status_code == 200, sent.text
        assert c.delete("/v1/people/customer:cust-kim", headers=headers("read")).status_code == 403
        r = c.delete("/v1/people/customer:cust-kim", headers=headers("admin"))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["ids"] == 2 and body["who"] == "admin"
        assert body["counts"]["events"] == 2 and body["counts"]["identity_links"] == 1
        assert body["counts"]["sessions"] == 1
        again = c.delete("/v1/people/customer:cust-kim", headers=headers("admin"))
        assert again.status_code == 404
        assert again.json()["error"]["code"] == "person_not_found"
        who = c.get("/v1/identity/anon-kim", headers=headers("read")).json()
        assert who["ids"] == ["anonymous:anon-kim"]
        audit = c.get("/v1/erasures", headers=headers("admin")).json()
        assert [a["erasure_id"] for a in audit] == [body["erasure_id"]]
        assert "kim" not in str(audit)

    env = settings_env(sqlite_settings)
    out = json_of(run_cli(["people", "erase", "anon-lou", "--json"], env))
    assert out["counts"]["events"] == 2 and out["who"].startswith("cli:")
    missing = run_cli(["people", "erase", "anon-lou"], env)
    assert missing.returncode == 2 and "person_not_found" in missing.stderr
    listed = json_of(run_cli(["people", "erasures", "--json"], env))
    assert listed[0]["erasure_id"] == out["erasure_id"] and len(listed) == 2
