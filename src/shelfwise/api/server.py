"""Entry point for uvicorn workers: settings come from ``SHELFWISE_CONFIG`` + environment."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from shelfwise.api.app import create_app
from shelfwise.config import CONFIG_FILE_ENV, Settings, load_settings
from shelfwise.monitoring.schedule import DEFAULT_EVERY_SECONDS
from shelfwise.serving.metrics import MULTIPROC_ENV
from shelfwise.store import connect, upgrade


def create_app_from_env() -> FastAPI:
    return create_app(load_settings())


def _settings_file(settings: Settings) -> Path:
    """Resolved settings for the worker processes, with key secrets replaced by digests."""
    data = settings.model_dump(mode="json", exclude={"api_keys"})
    data["api_keys"] = [
        {"name": k.name, "sha256": k.digest(), "roles": list(k.roles)} for k in settings.api_keys
    ]
    fd, name = tempfile.mkstemp(prefix="shelfwise-", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    return Path(name)


def with_alert_schedule(settings: Settings) -> Settings:
    """A server evaluates alerts on a schedule unless the setting says otherwise."""
    if settings.alert_evaluate_every_seconds is not None:
        return settings
    return settings.model_copy(update={"alert_evaluate_every_seconds": DEFAULT_EVERY_SECONDS})


def _reuse_port_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


class WorkerListener:
    """Each worker's own listening socket on the shared port (``SO_REUSEPORT``).

    With one socket shared by every worker (uvicorn's default), the first worker
    to wake accepts every waiting connection: 16 keep-alive connections opened
    together all landed on one worker, and the other core sat idle. With a
    socket per worker the kernel spreads new connections across the workers.
    Handed to uvicorn's supervisor in place of the shared socket: it is pickled
    into each worker process, which unpickles it as a fresh socket of its own.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port

    def __reduce__(self) -> tuple[Any, tuple[str, int]]:
        return (_reuse_port_socket, (self.host, self.port))


def _run_workers(config: uvicorn.Config, host: str, port: int) -> None:
    """uvicorn's supervisor (restarts, signals, health checks) over per-worker sockets."""
    try:
        reserved = _reuse_port_socket(host, port)  # fails early if the port is taken
    except OSError as e:
        print(f"cannot listen on {host}:{port}: {e}", file=sys.stderr)
        raise SystemExit(3) from e
    try:
        listener = WorkerListener(host, reserved.getsockname()[1])  # port 0: the one chosen
        Multiprocess(config, sockets=[listener]).run()  # type: ignore[list-item]
    except KeyboardInterrupt:
        pass
    finally:
        reserved.close()


def serve(settings: Settings) -> None:
    """Run the HTTP server (``settings.workers`` processes) until interrupted."""
    settings = with_alert_schedule(settings)
    # Migrate once here: workers migrating a fresh database at the same time race.
    db = connect(settings)
    try:
        upgrade(db)
    finally:
        db.dispose()
    path = _settings_file(settings)
    os.environ[CONFIG_FILE_ENV] = str(path)
    metrics_dir = None
    if settings.workers > 1 and not os.environ.get(MULTIPROC_ENV):
        # Each worker writes its metric samples here; /metrics sums them all.
        metrics_dir = tempfile.mkdtemp(prefix="shelfwise-metrics-")
        os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        options: dict[str, Any] = {
            "factory": True,
            "host": settings.host,
            "port": settings.port,
            "workers": settings.workers,
            "log_level": settings.log_level,
            "access_log": False,
        }
        if settings.workers > 1:
            config = uvicorn.Config("shelfwise.api.server:create_app_from_env", **options)
            _run_workers(config, settings.host, settings.port)
        else:
            uvicorn.run("shelfwise.api.server:create_app_from_env", **options)
    finally:
        path.unlink(missing_ok=True)
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
            os.environ.pop(MULTIPROC_ENV, None)
