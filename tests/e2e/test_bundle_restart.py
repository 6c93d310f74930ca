"""A model bundle is immutable: restarts of a two-worker server serve it unchanged.

Regression: serving compiled the learned ranker into the bundle's folder
(rewriting ``ranker/ranker.txt``); after two workers had served it, the file no
longer matched the manifest and the next start served degraded slates, silently.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx2 as httpx

from shelfwise.config import Settings
from shelfwise.runtime import Runtime
from tests.conftest import headers
from tests.e2e.server import running_server, settings_env, train_here
from tests.shop_fixture import fill

READ = headers("read")


def files_of(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file of ``folder``: its bytes, modification time and mode."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_mode)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _each_connection(base: str, path: str, n: int = 6) -> list[dict[str, Any]]:
    """``path`` asked on ``n`` fresh connections (the kernel spreads them over workers)."""
    out = []
    for _ in range(n):
        with httpx.Client(base_url=base) as client:
            r = client.get(path, headers=READ)
            assert r.status_code == 200, r.text
            out.append(r.json())
    return out


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


def test_restarts_serve_the_learned_ranker_from_an_unchanged_bundle(
    sqlite_settings: Settings,
) -> None:
    runtime = Runtime.open(sqlite_settings)
    fill(runtime)
    runtime.close()
    env = settings_env(sqlite_settings, SHELFWISE_MODEL_WATCH_SECONDS="0.2")
    trained = train_here(sqlite_settings, with_ranker=True)  # what `train --ranker` runs
    version, folder = trained["version"], Path(trained["path"])
    written = files_of(folder)
    assert "ranker/ranker.txt" in written and not any(k.endswith(".so") for k in written)
    manifest = json.loads((folder / "MANIFEST.json").read_text())
    assert set(written) == {*manifest["files"], "MANIFEST.json"}
    assert all(mode & 0o222 == 0 for _, _, mode in written.values())  # read-only

    for _ in range(2):  # the regression showed at the second start: served, then refused
        with running_server(env, workers=2) as base:
            for state in _each_connection(base, "/v1/models"):
                assert state["loaded"]["version"] == version and state["error"] is None
            for ready in _each_connection(base, "/ready"):
                assert (ready["model_version"], ready["degraded"]) == (version, False)
            query = "/v1/recommendations?placement=product_similar&item=KI1&k=4"
            for slate in _each_connection(base, query):
                assert (slate["mode"], slate["ranker"]) == ("model", "learned")
                assert slate["model_version"] == version and len(slate["items"]) == 4
            metrics = httpx.get(f"{base}/metrics", headers=READ, timeout=30).text
            assert _metric(metrics, "shelfwise_model_bundle_loaded") == 1
            assert _metric(metrics, "shelfwise_model_bundle_refused") == 0
        assert files_of(folder) == written  # same bytes, same mtimes, still read-only


def test_a_tampered_bundle_is_refused_loudly_and_the_last_good_one_serves(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    runtime = Runtime.open(sqlite_settings)
    fill(runtime)
    runtime.close()
    env = settings_env(sqlite_settings)
    good = train_here(sqlite_settings)["version"]
    spoilt = train_here(sqlite_settings, force=True)
    assert spoilt["promoted"]
    array = Path(spoilt["path"]) / "arrays" / "popular.scores.npy"
    array.chmod(0o644)
    data = bytearray(array.read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes
    array.write_bytes(bytes(data))

    log = tmp_path / "server.log"
    with running_server(env, workers=2, log=log) as base:
        for ready in _each_connection(base, "/ready"):
            assert ready["status"] == "ready" and ready["model_version"] == good
            assert (ready["degraded"], ready["degraded_reason"]) == (True, "bundle_corrupt")
        for state in _each_connection(base, "/v1/models"):
            assert state["loaded"]["version"] == good and state["promoted"] == spoilt["version"]
            assert "checksum" in state["error"] and f"serving {good}" in state["error"]
        for slate in _each_connection(base, "/v1/recommendations?placement=home&k=3"):
            assert (slate["mode"], slate["model_version"]) == ("model", good)
        metrics = httpx.get(f"{base}/metrics", headers=READ, timeout=30).text
        assert _metric(metrics, "shelfwise_model_bundle_loaded") == 1
        assert _metric(metrics, "shelfwise_model_bundle_refused") == 1
        failures = 'shelfwise_model_bundle_verification_failures_total{code="bundle_corrupt"}'
        assert _metric(metrics, failures) == 2  # each worker refused it once
    said = log.read_text()
    assert said.count(f"model bundle {spoilt['version']} refused [bundle_corrupt]") == 2
    assert said.count(f"serving {good}") >= 2
