"""The issue's claim on real data: shelfwise's candidate blend is at least as good as the best
peer baseline on NDCG@10 in both protocols on UCI Online Retail (cutoff 2011-11-25)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shelfwise.config import Settings
from tests.e2e.server import json_of, run_cli, settings_env

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "online_retail"


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_blend_beats_every_baseline_on_online_retail(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    if not (DATA / "online_retail.parquet").is_file():
        pytest.fail(f"Online Retail is missing at {DATA}")
    env = settings_env(sqlite_settings)
    json_of(run_cli(["events", "load-dataset", "online_retail", "--json"], env, timeout=900))
    report = json_of(
        run_cli(
            ["evaluate", "--cutoff", "2011-11-25", "--out", str(tmp_path), "--json"],
            env,
            timeout=1800,
        )
    )
    assert report["people"]["all"] > 700 and report["people"]["new"] > 600
    ndcg = {
        m["name"]: {p: m["metrics"][p]["10"]["ndcg"] for p in ("all", "new")}
        for m in report["models"]
    }
    for protocol in ("all", "new"):
        best = max(v[protocol] for name, v in ndcg.items() if name != "shelfwise")
        assert ndcg["shelfwise"][protocol] >= best, (protocol, ndcg)
