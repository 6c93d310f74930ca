"""Real data through the real CLI (UCI Online Retail, cutoff 2011-11-25): the dataset loads
and ``shelfwise evaluate`` reports shelfwise's candidate blend, with its bootstrap interval,
at least as good as the best peer baseline on NDCG@10 in both protocols.

The learned ranker's margin over the peers is not asserted here: it was chosen at this very
cutoff. Its claim is the rolling-origin backtest's (``benchmarks/backtest.py``, tuned peers,
four origins); ``tests/e2e/test_backtest.py`` drives that command on a slice."""

from __future__ import annotations

from pathlib import Path

import pytest

from shelfwise.config import Settings
from tests.datasets import shared_data
from tests.e2e.server import json_of, run_cli, settings_env

DATA = shared_data() / "online_retail"


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_the_blend_beats_every_baseline_on_online_retail(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    if not (DATA / "online_retail.parquet").is_file():
        pytest.fail(f"Online Retail is missing at {DATA}")
    env = settings_env(sqlite_settings)
    json_of(
        run_cli(
            [
                "events",
                "load-dataset",
                "online_retail",
                "--path",
                str(DATA / "online_retail.parquet"),
                "--json",
            ],
            env,
            timeout=900,
        )
    )
    args = ["evaluate", "--cutoff", "2011-11-25", "--k", "10"]
    report = json_of(run_cli([*args, "--out", str(tmp_path), "--json"], env, timeout=2700))
    assert report["people"]["all"] > 700 and report["people"]["new"] > 600
    ndcg = {
        m["name"]: {p: m["metrics"][p]["10"]["ndcg"] for p in ("all", "new")}
        for m in report["models"]
    }
    for protocol in ("all", "new"):
        best = max(v[protocol] for name, v in ndcg.items() if not name.startswith("shelfwise"))
        assert ndcg["shelfwise"][protocol] >= best, (protocol, ndcg)
        shelfwise = next(m for m in report["models"] if m["name"] == "shelfwise")
        interval = shelfwise["ndcg_interval"][protocol]["10"]
        assert interval["low"] < ndcg["shelfwise"][protocol] < interval["high"], interval
