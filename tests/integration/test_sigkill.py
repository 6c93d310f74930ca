"""Kill the server (SIGKILL) in the middle of a stream of batches: no acknowledged event is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import httpx2 as httpx
import pytest
from sqlalchemy import select

from shelfwise.config import Settings
from shelfwise.runtime import Runtime
from shelfwise.store.tables import events
from tests.conftest import headers
from tests.e2e.server import SHELFWISE, free_port, settings_env

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


def _wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "server exited early"
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("server not ready")


@pytest.mark.slow
def test_acknowledged_events_survive_sigkill(settings: Settings) -> None:
    Runtime.open(settings, load=False).close()  # migrate before the server starts
    port = free_port()
    proc = subprocess.Popen(
        [*SHELFWISE, "serve", "--port", str(port)],
        env=settings_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    acked: list[str] = []
    sent = 0
    stop = threading.Event()

    def stream() -> None:
        nonlocal sent
        with httpx.Client(timeout=30) as client:
            k = 0
            while not stop.is_set():
                batch = _batch(k)
                sent += 1
                try:
                    r = client.post(f"{base}/v1/events", json=batch, headers=headers("ingest"))
                except httpx.TransportError:
                    return
                if r.status_code == 200:
                    acked.extend(
                        v["event_id"] for v in r.json()["verdicts"] if v["status"] != "rejected"
                    )
                k += 1

    try:
        _wait_ready(base, proc)
        worker = threading.Thread(target=stream)
        worker.start()
        deadline = time.monotonic() + 60
        while len(acked) < 1_000 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        stop.set()
        worker.join(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert len(acked) >= 1_000 and sent * 200 > len(acked)
    rt = Runtime.open(settings, load=False)
    try:
        with rt.db.engine.connect() as conn:
            stored = set(conn.execute(select(events.c.event_id)).scalars())
    finally:
        rt.close()
    assert set(acked) <= stored
