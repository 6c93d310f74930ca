"""A running server picks up a newly promoted bundle by itself (file watch on CURRENT)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2 as httpx

from shelfwise.config import Settings
from shelfwise.runtime import Runtime
from tests.conftest import headers
from tests.e2e.server import json_of, run_cli, running_server, settings_env
from tests.shop_fixture import fill
from tests.waiting import CEILING


def _eventually(
    read: Callable[[], Any], ok: Callable[[Any], bool], timeout: float = CEILING
) -> Any:
    """Poll ``read`` until ``ok`` holds (the watch runs on its own clock); the last value."""
    deadline = time.monotonic() + timeout
    while True:
        got = read()
        if ok(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def _point(model_dir: Path, version: str) -> None:
    """Move CURRENT the way a promotion does: one atomic rename."""
    tmp = model_dir / ".CURRENT.test"
    tmp.write_text(version + "\n")
    os.replace(tmp, model_dir / "CURRENT")


def test_a_promoted_bundle_is_loaded_without_a_reload_call(
    sqlite_settings: Settings,
) -> None:
    runtime = Runtime.open(sqlite_settings)
    fill(runtime)
    runtime.close()
    env = settings_env(sqlite_settings)
    first = json_of(run_cli(["train", "--json"], env))
    model_dir = sqlite_settings.model_dir

    serve_env = {**env, "SHELFWISE_MODEL_WATCH_SECONDS": "0.2"}
    with running_server(serve_env) as base, httpx.Client(timeout=30) as api:

        def state() -> dict[str, Any]:
            r = api.get(f"{base}/v1/models", headers=headers("read"))
            assert r.status_code == 200, r.text
            return dict(r.json())

        assert state()["loaded"]["version"] == first["version"]

        # 1. a promoted bundle is picked up, no reload call
        second = json_of(run_cli(["train", "--json", "--force"], env))
        assert second["promoted"]
        got = _eventually(state, lambda s: s["loaded"]["version"] == second["version"])
        assert got["loaded"]["version"] == second["version"] and got["error"] is None

        # 2. a bundle that was not promoted (what the guard does to a worse one) is not
        third = json_of(run_cli(["train", "--json", "--no-promote"], env))
        assert not third["promoted"] and third["version"] in state()["versions"]

        # 3. a pointer to a partial bundle (no manifest yet) is refused; the served
        #    bundle stays and /v1/models says why
        partial = model_dir / "20990101T000000000000-partial"
        (partial / "arrays").mkdir(parents=True)
        _point(model_dir, partial.name)
        got = _eventually(state, lambda s: s["error"] is not None)
        assert "MANIFEST" in got["error"]
        assert got["loaded"]["version"] == second["version"]  # not the third, not the partial

        # 4. once the pointer names a complete bundle, it is loaded
        _point(model_dir, third["version"])
        got = _eventually(state, lambda s: s["loaded"]["version"] == third["version"])
        assert got["loaded"]["version"] == third["version"] and got["error"] is None
