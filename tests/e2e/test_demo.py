"""``shelfwise demo`` end to end: a fresh directory, the real command, the real server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.e2e.server import reserved_port, run_cli

KEY = {"X-API-Key": "demo-admin-key"}
PAGES = ("", "/categories", "/alerts", "/drift", "/signals", "/experiments", "/rules", "/decisions")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_demo_runs_the_whole_system_and_stops_cleanly(tmp_path: Path) -> None:
    with reserved_port() as port:  # no other test's server is handed it meanwhile
        _demo_on(port, tmp_path)


def _demo_on(port: int, tmp_path: Path) -> None:
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHELFWISE_")}
    cmd = [sys.executable, "-m", "shelfwise.cli", "demo", "--port", str(port)]
    cmd += ["--products", "300", "--people", "300", "--days", "21", "--rate", "2"]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        deadline = time.monotonic() + 300
        lines: list[str] = []
        assert proc.stdout is not None
        while not any("demo is live" in line for line in lines):
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "".join(lines)
            assert "demo setup failed" not in line, "".join([*lines, line])
            lines.append(line)
            assert time.monotonic() < deadline, "".join(lines)
        # Three weeks of history are enough for the learned ranker (one-week horizons).
        assert not any("no learned ranker" in line for line in lines), "".join(lines)
        with httpx.Client(base_url=base, headers=KEY, timeout=30) as c:
            assert c.get("/health").json()["status"] == "ok"
            models = c.get("/v1/models").json()
            assert models["loaded"] is not None
            assert models["loaded"]["version"] == models["promoted"]
            placements = c.get("/v1/placements").json()["placements"]
            first = c.get("/v1/recommendations", params={"placement": "home", "k": 5}).json()
            item = first["items"][0]["product_id"]
            for p in placements:
                params = {"placement": p["name"], "k": 5, "item": item, "cart": item}
                r = c.get("/v1/recommendations", params=params)
                assert r.status_code == 200, (p["name"], r.text)
                assert r.json()["items"], p["name"]

            # A brand suppression takes effect on the very next request.
            brand = first["items"][0]["brand"]
            now = datetime.now(UTC)
            rule = {
                "id": "pause-top-brand",
                "type": "suppress",
                "reason": "test: supplier dispute",
                "attribute": "brand",
                "values": [brand],
                "window": {
                    "start": (now - timedelta(minutes=1)).isoformat(),
                    "end": (now + timedelta(days=14)).isoformat(),
                },
            }
            assert c.post("/v1/rules", json=rule).status_code == 201
            after = c.get("/v1/recommendations", params={"placement": "home", "k": 10}).json()
            assert after["items"]
            assert brand not in {i["brand"] for i in after["items"]}

            report = c.get("/v1/experiments/home-ranker-vs-popular/report")
            assert report.status_code == 200
            assert {a["arm"] for a in report.json()["cells"][0]["arms"]} == {"popular", "ranked"}

        with httpx.Client(base_url=base, timeout=30) as browser:
            shop = browser.get("/demo/store")
            assert shop.status_code == 200
            assert '"demo-storefront-key"' in shop.text
            assert 'from "/shelfwise.js"' in shop.text
            slate = browser.get(
                "/v1/recommendations",
                params={"placement": "home", "key": "demo-storefront-key"},
                headers={"Origin": base},
            )
            assert slate.status_code == 200
            assert slate.json()["items"]
            login = browser.post("/dashboard/login", data={"api_key": KEY["X-API-Key"]})
            assert login.status_code == 303
            for page in PAGES:
                assert browser.get(f"/dashboard{page}").status_code == 200, page
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        rest = proc.stdout.read() if proc.stdout else ""
        if proc.stdout:
            proc.stdout.close()
    assert code == 0, rest
    assert "Traceback" not in rest


def test_demo_on_a_busy_port_stops_with_a_clear_error_and_sends_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHELFWISE_")}
    # Another program holds the port: it listens but never accepts, so a connection
    # the demo opened (its readiness probe, a catalog upload) would wait in its backlog.
    with socket.create_server(("127.0.0.1", 0)) as holder:
        port = holder.getsockname()[1]
        r = run_cli(["demo", "--host", "127.0.0.1", "--port", str(port)], env, cwd=tmp_path)
        holder.setblocking(False)
        with pytest.raises(BlockingIOError):
            holder.accept()  # nothing ever connected to the other program
    assert r.returncode == 3, r.stdout + r.stderr
    assert f"error [port_in_use] port {port} on 127.0.0.1 is already in use" in r.stderr
    assert "--port N" in r.stderr and "Traceback" not in r.stdout + r.stderr
    assert "starting shelfwise" not in r.stdout
    assert list(tmp_path.iterdir()) == []  # no store, no models: nothing was set up
