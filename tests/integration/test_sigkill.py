"""Kill the server (SIGKILL) in the middle of a stream of batches: no acknowledged event is lost."""

from __future__ import annotations

import httpx2 as httpx
import pytest
from sqlalchemy import select

from shelfwise.config import Settings
from shelfwise.runtime import Runtime
from shelfwise.store.tables import events
from tests.conftest import headers
from tests.integration.killing import Stream, server, sigkill_when

T = "2026-11-01T12:00:00Z"


def _batch(k: int, size: int = 200) -> list[dict[str, object]]:
    return [
        {
            "type": "product_view",
            "event_id": f"b{k}-{i}",
            "occurred_at": T,
            "anonymous_id": f"a{i % 50}",
            "product_id": f"P{i % 30}",
        }
        for i in range(size)
    ]


@pytest.mark.slow
def test_acknowledged_events_survive_sigkill(settings: Settings) -> None:
    Runtime.open(settings, load=False).close()  # migrate before the server starts
    acked: list[str] = []

    def send(client: httpx.Client, k: int) -> bool:
        r = client.post(f"{base}/v1/events", json=_batch(k), headers=headers("ingest"))
        if r.status_code != 200:
            return False
        acked.extend(v["event_id"] for v in r.json()["verdicts"] if v["status"] != "rejected")
        return True

    with server(settings) as (proc, base), Stream(send) as stream:
        sigkill_when(proc, stream, 5)
    assert len(acked) >= 1_000 and stream.sent * 200 > len(acked)
    rt = Runtime.open(settings, load=False)
    try:
        with rt.db.engine.connect() as conn:
            stored = set(conn.execute(select(events.c.event_id)).scalars())
    finally:
        rt.close()
    assert set(acked) <= stored
