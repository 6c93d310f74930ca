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


def _view(eid: str, **kw: object) -> dict[str, object]:
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
    batch = [_view("e1"), _view("e1"), _view("e2", quantity=3), _view("e3")]
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
    assert client.post("/v1/events", json=[_view("e1")], headers=headers("read")).status_code == 403
    r = client.post("/v1/events", content=b"{nope", headers=headers("ingest"))
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_json")
    too_many = [_view(f"e{i}") for i in range(settings.max_batch_size + 1)]
    r = client.post("/v1/events", json=too_many, headers=headers("ingest"))
    assert (r.status_code, r.json()["error"]["code"]) == (413, "batch_too_large")


def test_cli_imports_jsonl_and_csv_and_replays(sqlite_settings: Settings, tmp_path: Path) -> None:
    env = settings_env(sqlite_settings)
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_text(
        "\n".join([json.dumps(_view("j1")), "{broken", json.dumps(_view("j2", anonymous_id=""))])
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
