"""With the database gone: slates keep coming from memory, events are refused with a 503."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

from fastapi.testclient import TestClient

from shelfwise.api import create_app
from shelfwise.catalog import Product
from shelfwise.config import load_settings
from shelfwise.runtime import Runtime
from tests.conftest import API_KEYS, headers


def test_database_down_serves_from_memory_and_refuses_events(tmp_path: Path) -> None:
    home = tmp_path / "db"
    home.mkdir()
    settings = load_settings(
        database_url=f"sqlite:///{home / 'shelfwise.db'}",
        api_keys=API_KEYS,
        model_dir=tmp_path / "models",
        decision_flush_seconds=60,
    )
    rt = Runtime.open(settings)
    rt.catalog.upsert(
        [
            Product(product_id=f"P{i}", title=f"Lamp {i}", price=10.0 + i, stock_qty=3)
            for i in range(8)
        ]
    )
    rt.snapshot.load()
    with TestClient(create_app(settings, rt), raise_server_exceptions=False) as c:
        assert (
            c.get("/v1/recommendations?placement=home&k=3", headers=headers("read")).status_code
            == 200
        )
        # The store disappears: its folder is gone and new connections cannot open it.
        rt.db.engine.dispose()
        rt.recommender.clock.close()
        shutil.rmtree(home)
        r = c.get("/v1/recommendations?placement=home&k=3&explain=true", headers=headers("read"))
        assert r.status_code == 200, r.text
        slate = r.json()
        assert len(slate["items"]) == 3
        assert (
            "catalog store unreachable: serving the in-memory snapshot" in slate["trace"]["notes"]
        )
        # The slate is queued for the log and answerable meanwhile.
        why = c.get(f"/v1/decisions/{slate['rec_id']}", headers=headers("read"))
        assert why.status_code == 200
        event = {
            "type": "product_view",
            "event_id": "e1",
            "occurred_at": datetime.now(UTC).isoformat(),
            "anonymous_id": "a1",
            "product_id": "P1",
        }
        r = c.post("/v1/events", json=[event], headers=headers("ingest"))
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "database_unavailable"
        assert "Traceback" not in r.text
    rt.close()  # the queued slate cannot be written: logged, not raised
