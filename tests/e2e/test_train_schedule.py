"""``shelfwise train --every S``: the trainer of a deployment (docker-compose.yml)
trains round after round, reports each on one line, and stops on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

from shelfwise.config import Settings
from shelfwise.runtime import Runtime
from tests.e2e.server import SHELFWISE, run_cli, settings_env
from tests.shop_fixture import fill


def test_rounds_are_trained_and_reported(sqlite_settings: Settings) -> None:
    runtime = Runtime.open(sqlite_settings)
    fill(runtime)
    runtime.close()
    env = settings_env(sqlite_settings)
    done = run_cli(
        ["train", "--every", "1", "--rounds", "2", "--json", "--keep-bundles", "0"],
        env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [line["round"] for line in lines] == [1, 2]
    assert lines[0]["promoted"] is True
    assert lines[0]["version"] != lines[1]["version"]
    promoted = [line["version"] for line in lines if line["promoted"]]
    current = (sqlite_settings.model_dir / "CURRENT").read_text().strip()
    assert current == promoted[-1]
    # --keep-bundles 0: after each round only the promoted bundle is left.
    assert lines[0]["pruned"] == []
    assert lines[1]["pruned"] == [
        v for v in (lines[0]["version"], lines[1]["version"]) if v != current
    ]
    left = [p.name for p in sqlite_settings.model_dir.iterdir() if not p.name.startswith(".")]
    assert sorted(left) == sorted(["CURRENT", "PROMOTIONS", current])


def test_a_failed_round_is_reported_and_sigterm_stops_the_trainer(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    env = settings_env(sqlite_settings)  # an empty store: the round cannot train
    proc = subprocess.Popen(
        [*SHELFWISE, "train", "--every", "3600", "--json"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert first["round"] == 1
        assert first["error"]  # a code, e.g. too little history
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)
