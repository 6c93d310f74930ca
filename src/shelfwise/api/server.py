"""Entry point for uvicorn workers: settings come from ``SHELFWISE_CONFIG`` + environment."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import uvicorn
from fastapi import FastAPI

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
        uvicorn.run(
            "shelfwise.api.server:create_app_from_env",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_level=settings.log_level,
            access_log=False,
        )
    finally:
        path.unlink(missing_ok=True)
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
            os.environ.pop(MULTIPROC_ENV, None)
