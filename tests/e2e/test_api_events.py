"""Events over HTTP and the CLI: verdicts, quarantine, replay."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shelfwise.api import create_app
from shelfwise.config import Settings
from tests.conftest import headers
from tests.e2e.server import json_of, run_cli, settings_env

T = "2026-11-01T12:00:00Z"


def view_event(eid: str, **kw: object) -> dict[str, object]:
    return {
        "type": "product_view",
        "event_id": eid,
        "occurred_at": T,
        "anonymous_id": "a1",
        "product_id": "P1",
        **kw,
    }


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def test_post_events_gives_a_verdict_per_event(client: TestClient) -> None:
    batch = [view_event("e1"), view_event("e1"), view_event("e2", quantity=3), view_event("e3")]
    r = client.post("/v1/events", json=batch, headers=headers("ingest"))
    assert r.status_code == 200
    body = r.json()
    assert (body["received"], body["accepted"], body["duplicate"], body["rejected"]) == (4, 2, 1, 1)
    assert [v["status"] for v in body["verdicts"]] == [
        "accepted",
        "duplicate",
        "rejected",
        "accepted",
    ]
    assert body["verdicts"][2]["problems"] == [
        {"code": "unknown_field", "field": "quantity", "message": "Extra inputs are not permitted"}
    ]
    again = client.post("/v1/events", json={"events": batch}, headers=headers("ingest")).json()
    assert (again["accepted"], again["duplicate"], again["rejected"]) == (0, 3, 1)
    q = client.get("/v1/quarantine", headers=headers("admin")).json()
    assert [(e["event_id"], e["seen_count"]) for e in q] == [("e2", 2)]


def test_post_events_refuses_bad_bodies_and_roles(client: TestClient, settings: Settings) -> None:
    assert (
        client.post("/v1/events", json=[view_event("e1")], headers=headers("read")).status_code
        == 403
    )
    r = client.post("/v1/events", content=b"{nope", headers=headers("ingest"))
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_json")
    too_many = [view_event(f"e{i}") for i in range(settings.max_batch_size + 1)]
    r = client.post("/v1/events", json=too_many, headers=headers("ingest"))
    assert (r.status_code, r.json()["error"]["code"]) == (413, "batch_too_large")


def test_cli_imports_jsonl_and_csv_and_replays(sqlite_settings: Settings, tmp_path: Path) -> None:
    env = settings_env(sqlite_settings)
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_text(
        "\n".join(
            [json.dumps(view_event("j1")), "{broken", json.dumps(view_event("j2", anonymous_id=""))]
        )
        + "\n"
    )
    out = json_of(run_cli(["events", "import", str(jsonl), "--json"], env))
    assert (out["received"], out["accepted"], out["rejected"]) == (3, 1, 2)
    assert out["reasons"] == {"empty_value": 1, "invalid_json": 1}
    csv_file = tmp_path / "views.csv"
    csv_file.write_text("id,ts,visitor,sku\nc1,2026-11-01T10:00:00Z,v1,P9\nc2,,v1,P9\n")
    out = json_of(
        run_cli(
            [
                "events",
                "import",
                str(csv_file),
                "--json",
                "--set",
                "type=product_view",
                "--map",
                "event_id=id",
                "--map",
                "occurred_at=ts",
                "--map",
                "anonymous_id=visitor",
                "--map",
                "product_id=sku",
            ],
            env,
        )
    )
    assert (out["accepted"], out["rejected"], out["reasons"]) == (1, 1, {"missing_field": 1})
    listed = json_of(run_cli(["quarantine", "list", "--json"], env))
    assert listed["counts"] == {"open": 3}
    replay = json_of(run_cli(["quarantine", "replay", "--json"], env))
    assert replay == {"accepted": 0, "duplicate": 0, "still_rejected": 3}


def test_signals_report_and_identity_over_http(client: TestClient) -> None:
    client.post(
        "/v1/events",
        json=[
            view_event("s1", session_id="x", device_id="d1"),
            {**view_event("s2"), "anonymous_id": ""},
        ],
        headers=headers("ingest"),
    )
    rep = client.get("/v1/signals/report", headers=headers("read")).json()
    assert rep["totals"]["events"] == 1 and rep["totals"]["rejected"] == 1
    assert rep["flags"] == []
    seg = rep["segments"][0]
    assert (seg["platform"], seg["volumes"]) == ("unknown", {"product_view": 1})
    assert rep["segments"][0]["schema_violations"] == {} or any(
        s["schema_violations"] == {"empty_value:anonymous_id": 1} for s in rep["segments"]
    )
    who = client.get("/v1/identity/d1", headers=headers("read")).json()
    assert who == {"person_id": "anonymous:a1", "ids": ["anonymous:a1", "device:d1"]}
    rec = client.get("/v1/signals/reconciliation", headers=headers("read")).json()
    assert (rec["lines"], rec["joined"], rec["misses"]) == (1, 0, {"unknown": 1})
