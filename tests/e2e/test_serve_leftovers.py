"""``serve`` keeps the API key digests off the disk, even when it is killed with -9.

Regression: ``serve`` wrote the resolved settings, key digests included, to
``/tmp/shelfwise-*.json`` for its workers; ``kill -9`` left the file behind.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx2 as httpx

from shelfwise.config import Settings
from tests.conftest import headers
from tests.e2e.server import children, running_server, server_pid, settings_env
from tests.waiting import eventually


def _holding(folder: Path, needles: list[str]) -> list[Path]:
    """The files under ``folder`` that contain one of ``needles``."""
    return [
        p
        for p in folder.rglob("*")
        if p.is_file() and any(n.encode() in p.read_bytes() for n in needles)
    ]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie is dead; only its parent has not reaped it yet


def _aged(path: Path, seconds: float = 3600) -> Path:
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_no_file_holds_key_digests_and_kill_9_leaves_nothing_behind(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    digests = [k.digest() for k in sqlite_settings.api_keys]
    legacy = tmp / "shelfwise-k9x2ab.json"  # what an earlier version left when killed
    legacy.write_text(f'{{"api_keys": [{{"sha256": "{digests[0]}"}}]}}')
    _aged(legacy)
    env = settings_env(sqlite_settings, TMPDIR=str(tmp))

    with running_server(env, workers=2) as base:
        assert not legacy.exists()  # removed when the server started
        r = httpx.get(f"{base}/v1/models", headers=headers("read"))
        assert r.status_code == 200  # the workers know the keys: they got the digests
        assert _holding(tmp, digests) == [] and not list(tmp.glob("shelfwise-*.json"))
        supervisor = server_pid(base)
        workers = children(supervisor)
        for pid in (supervisor, *workers):
            os.kill(pid, signal.SIGKILL)
        eventually(
            lambda: not any(_alive(pid) for pid in workers), "the workers gone after SIGKILL"
        )
    assert _holding(tmp, digests) == []
    (left,) = tmp.glob("shelfwise-metrics-*")  # no secrets; removed by the next start
    _aged(left)

    with running_server(env) as base:
        assert httpx.get(f"{base}/ready").status_code == 200
        assert not left.exists()
