"""Run the real ``shelfwise`` CLI and HTTP server as subprocesses."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx

from shelfwise.config import Settings

SHELFWISE = [sys.executable, "-m", "shelfwise.cli"]


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment that hands ``settings`` to a child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHELFWISE_")}
    env["SHELFWISE_DATABASE_URL"] = settings.database_url
    if settings.database_schema:
        env["SHELFWISE_DATABASE_SCHEMA"] = settings.database_schema
    if settings.redis_url:
        env["SHELFWISE_REDIS_URL"] = settings.redis_url
        env["SHELFWISE_REDIS_PREFIX"] = settings.redis_prefix
    env["SHELFWISE_MODEL_DIR"] = str(settings.model_dir)
    env["SHELFWISE_MODEL_WATCH_SECONDS"] = str(settings.model_watch_seconds)
    env["SHELFWISE_API_KEYS"] = json.dumps(
        [{"name": k.name, "sha256": k.digest(), "roles": list(k.roles)} for k in settings.api_keys]
    )
    # The server's alert schedule runs only where a test asks for it.
    env["SHELFWISE_ALERT_EVALUATE_EVERY_SECONDS"] = str(settings.alert_evaluate_every_seconds or 0)
    env.update(extra)
    return env


def run_cli(
    args: list[str], env: Mapping[str, str], cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SHELFWISE, *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(
    env: Mapping[str, str], workers: int = 1, cwd: Path | None = None, args: list[str] | None = None
) -> Iterator[str]:
    """Start ``shelfwise serve`` and yield its base URL once /health answers."""
    port = free_port()
    cmd = [*SHELFWISE, "serve", "--port", str(port), "--workers", str(workers), *(args or [])]
    proc = subprocess.Popen(
        cmd, env=dict(env), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                out = proc.stdout.read() if proc.stdout else ""
                raise RuntimeError(f"server exited with {proc.returncode}:\n{out}")
            try:
                if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server did not become ready in 60 s")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


def json_of(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


@contextmanager
def lamp_shop_client(settings: Settings) -> Iterator[Any]:
    """An in-process client (``fastapi.testclient.TestClient``) on a store of 12 lamps
    of two brands, all in stock, with no model bundle (degraded mode)."""
    from fastapi.testclient import TestClient

    from shelfwise.api import create_app
    from shelfwise.catalog import Product
    from shelfwise.runtime import Runtime

    rt = Runtime.open(settings)
    rows = [
        {
            "product_id": f"P{i}",
            "title": f"Lamp {i}",
            "category_path": "lighting/lamps",
            "brand": "Gleam" if i % 2 else "Lumen",
            "price": 10.0 + i,
            "stock_qty": 3,
            "image_url": f"/img/{i}.jpg",
        }
        for i in range(1, 13)
    ]
    rt.catalog.upsert([Product.model_validate(r) for r in rows])
    rt.snapshot.load()
    try:
        with TestClient(create_app(settings, rt), raise_server_exceptions=False) as c:
            yield c
    finally:
        rt.close()
