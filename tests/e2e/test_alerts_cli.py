"""``shelfwise alerts calibrate`` through the real CLI."""

from __future__ import annotations

from shelfwise.config import Settings
from tests.e2e.server import run_cli, settings_env


def test_calibrate_on_a_store_without_history_says_what_it_needs(
    sqlite_settings: Settings,
) -> None:
    env = settings_env(sqlite_settings)
    done = run_cli(["alerts", "calibrate", "--weeks", "1"], env)
    assert done.returncode == 2, done.stderr
    assert "[not_enough_history]" in done.stderr
    assert "needs 38 days" in " ".join(done.stderr.split())  # 1 week + 28 days + 72 h
    bad = run_cli(["alerts", "calibrate", "--weeks", "0"], env)
    assert bad.returncode == 2 and "--weeks" in bad.stderr
