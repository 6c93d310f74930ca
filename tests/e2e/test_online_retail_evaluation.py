"""The issues' claims on real data (UCI Online Retail, cutoff 2011-11-25), in one run of
``shelfwise evaluate --ranker``: shelfwise's candidate blend is at least as good as the best
peer baseline on NDCG@10 in both protocols, and the full pipeline (sources -> learned
ranker) beats the best baseline by a clear margin in both."""

from __future__ import annotations

from pathlib import Path

import pytest

from shelfwise.config import Settings
from tests.datasets import shared_data
from tests.e2e.server import json_of, run_cli, settings_env

DATA = shared_data() / "online_retail"
# Ranker NDCG@10 / best baseline's, asserted with slack below what was measured
# (docs/ranking.md: measured 1.158 on `all`, 1.395 on `new`, 2026-11-27).
RANKER_MARGIN = {"all": 1.12, "new": 1.30}


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_blend_and_ranker_beat_every_baseline_on_online_retail(
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
    args = ["evaluate", "--cutoff", "2011-11-25", "--ranker", "--k", "10"]
    report = json_of(run_cli([*args, "--out", str(tmp_path), "--json"], env, timeout=2700))
    assert report["people"]["all"] > 700 and report["people"]["new"] > 600
    ndcg = {
        m["name"]: {p: m["metrics"][p]["10"]["ndcg"] for p in ("all", "new")}
        for m in report["models"]
    }
    for protocol in ("all", "new"):
        best = max(v[protocol] for name, v in ndcg.items() if not name.startswith("shelfwise"))
        assert ndcg["shelfwise"][protocol] >= best, (protocol, ndcg)
        ratio = ndcg["shelfwise+ranker"][protocol] / best
        assert ratio >= RANKER_MARGIN[protocol], (protocol, ratio, ndcg)
