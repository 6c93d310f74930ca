"""``serve`` removes what dead servers left in the temporary folder, and only that."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from shelfwise.api.server import STALE_AFTER_SECONDS, remove_stale_temp_files


def _age(path: Path, seconds: float) -> Path:
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


def test_only_old_leftovers_no_live_process_names_are_removed(tmp_path: Path) -> None:
    old = STALE_AFTER_SECONDS + 60
    dead = tmp_path / "shelfwise-dead1234.json"  # what a server killed with -9 left
    dead.write_text('{"api_keys": [{"sha256": "..."}]}')
    _age(dead, old)
    metrics = tmp_path / "shelfwise-metrics-dead"
    metrics.mkdir()
    (metrics / "counter_123.db").write_bytes(b"")
    _age(metrics, old)
    starting = tmp_path / "shelfwise-new5678.json"  # a server that is starting right now
    starting.write_text("{}")
    in_use = tmp_path / "shelfwise-live9999.json"  # a live worker's environment names it
    in_use.write_text("{}")
    _age(in_use, old)
    other = tmp_path / "unrelated.json"
    other.write_text("{}")
    _age(other, old)
    env = {**os.environ, "SHELFWISE_CONFIG": str(in_use)}
    with subprocess.Popen(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    ) as live:
        try:
            # Until it has exec'd, the child's /proc environ is still ours (without that
            # SHELFWISE_CONFIG): wait for it to speak before looking.
            assert live.stdout is not None and live.stdout.readline() == "up\n"
            removed = remove_stale_temp_files(tmp_path)
        finally:
            live.kill()
    assert sorted(removed) == sorted([dead, metrics])
    assert not dead.exists() and not metrics.exists()
    assert starting.exists() and in_use.exists() and other.exists()
    assert remove_stale_temp_files(tmp_path) == [in_use]  # its process has gone
