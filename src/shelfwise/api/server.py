"""``shelfwise serve``: uvicorn over one or several worker processes.

The workers get the resolved settings (API keys as digests) inside the app
factory that uvicorn's supervisor hands each of them through the pipe it spawns
the worker with: nothing is written to disk, so no file with key digests
outlives the server, even after ``kill -9``. Earlier versions wrote
``$TMPDIR/shelfwise-*.json`` for the workers to read; ``serve`` removes those
left behind by dead servers when it starts (:func:`remove_stale_temp_files`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from shelfwise.api.workers import WorkerApp, WorkerListener, reuse_port_socket
from shelfwise.config import CONFIG_FILE_ENV, Settings, load_settings
from shelfwise.monitoring.schedule import DEFAULT_EVERY_SECONDS
from shelfwise.serving.metrics import MULTIPROC_ENV
from shelfwise.store import connect, upgrade

if TYPE_CHECKING:
    from fastapi import FastAPI

log = logging.getLogger("shelfwise.server")

# What servers leave in the temporary folder, and the variable naming the one in use:
# settings files of earlier versions (key digests inside) and metrics folders.
LEFTOVERS = (("shelfwise-*.json", CONFIG_FILE_ENV), ("shelfwise-metrics-*", MULTIPROC_ENV))
STALE_AFTER_SECONDS = 60.0  # younger ones may belong to a server that is starting


def create_app_from_env() -> FastAPI:
    """For an outside process manager (``uvicorn --factory``): settings from
    ``SHELFWISE_CONFIG`` and the environment."""
    # Imported here: ``serve``'s supervisor never builds the app (its workers do).
    from shelfwise.api.app import create_app

    return create_app(load_settings())


def _worker_settings(settings: Settings) -> str:
    """``settings`` as JSON for the workers, API keys as digests."""
    data = settings.model_dump(mode="json", exclude={"api_keys"})
    data["api_keys"] = [
        {"name": k.name, "sha256": k.digest(), "roles": list(k.roles)} for k in settings.api_keys
    ]
    return json.dumps(data)


def _referenced(variable: str) -> set[str]:
    """The values of ``variable`` in the environments of the live processes we may read."""
    values: set[str] = set()
    prefix = f"{variable}=".encode()
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            entries = environ.read_bytes().split(b"\0")
        except OSError:  # gone, or another user's
            continue
        values.update(
            e[len(prefix) :].decode(errors="replace") for e in entries if e.startswith(prefix)
        )
    return values


def remove_stale_temp_files(folder: Path | None = None) -> list[Path]:
    """Remove what dead servers left in the temporary folder; return what was removed.

    A leftover is stale when it is ours, older than a minute and named in no live
    process's environment (a worker of a running server names its own). Needs
    Linux's ``/proc``; elsewhere nothing is removed.
    """
    if not Path("/proc/self/environ").is_file():
        return []
    folder = folder or Path(tempfile.gettempdir())
    removed: list[Path] = []
    for pattern, variable in LEFTOVERS:
        in_use = _referenced(variable)
        for path in folder.glob(pattern):
            try:
                stat = path.lstat()
            except OSError:
                continue
            if (
                str(path) in in_use
                or stat.st_uid != os.getuid()
                or time.time() - stat.st_mtime < STALE_AFTER_SECONDS
            ):
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    if removed:
        log.warning("removed %d stale temporary file(s) of earlier servers", len(removed))
    return removed


def with_alert_schedule(settings: Settings) -> Settings:
    """A server evaluates alerts on a schedule unless the setting says otherwise."""
    if settings.alert_evaluate_every_seconds is not None:
        return settings
    return settings.model_copy(update={"alert_evaluate_every_seconds": DEFAULT_EVERY_SECONDS})


def _run_workers(config: uvicorn.Config, host: str, port: int) -> None:
    """uvicorn's supervisor (restarts, signals, health checks) over per-worker sockets."""
    try:
        reserved = reuse_port_socket(host, port)  # fails early if the port is taken
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
    remove_stale_temp_files()
    # Migrate once here: workers migrating a fresh database at the same time race.
    db = connect(settings)
    try:
        upgrade(db)
    finally:
        db.dispose()
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
        app = WorkerApp(_worker_settings(settings))
        if settings.workers > 1:
            _run_workers(uvicorn.Config(app, **options), settings.host, settings.port)
        else:
            uvicorn.run(app, **options)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
            os.environ.pop(MULTIPROC_ENV, None)
