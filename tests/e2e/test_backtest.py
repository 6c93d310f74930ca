"""``shelfwise evaluate --origin ...`` on a slice of UCI Online Retail, through the real CLI:
a rolling-origin backtest whose origins are London midnights (one in summer time), whose
peers are tuned on each origin's validation window, and whose per-origin and pooled
comparisons carry paired bootstrap intervals of the ratio.

The quality targets of the full data set are measured by ``benchmarks/backtest.py``; this
slice (one customer in twenty, the 300 items they bought most, from mid-July
2011) checks the command, not the margins."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shelfwise.config import Settings
from tests.datasets import shared_data
from tests.e2e.server import json_of, run_cli, settings_env

DATA = shared_data() / "online_retail" / "online_retail.parquet"
PEERS = {"item_knn", "implicit_als", "ease", "popularity", "recent_popularity", "past_then_popular"}


def slice_of_online_retail(folder: Path) -> Path:
    table = pq.read_table(DATA)
    customer = np.nan_to_num(table.column("CustomerID").to_numpy(zero_copy_only=False), nan=-1)
    at = table.column("InvoiceDate").to_numpy().astype("datetime64[s]")
    keep = (customer % 20 == 0) & (at >= np.datetime64("2011-07-15"))
    codes = np.asarray(table.column("StockCode").to_pylist(), dtype=str)
    names, counts = np.unique(codes[keep], return_counts=True)
    keep &= np.isin(codes, names[np.argsort(-counts, kind="stable")[:300]])
    path = folder / "slice.parquet"
    pq.write_table(table.filter(pa.array(keep)), path)
    return path


@pytest.mark.timeout(900)
def test_backtest_on_a_slice_of_online_retail(sqlite_settings: Settings, tmp_path: Path) -> None:
    if not DATA.is_file():
        pytest.fail(f"Online Retail is missing at {DATA}")
    env = settings_env(sqlite_settings)
    path = slice_of_online_retail(tmp_path)
    json_of(
        run_cli(["events", "load-dataset", "online_retail", "--path", str(path), "--json"], env)
    )
    args = ["evaluate", "--origin", "2011-10-28", "--origin", "2011-11-11", "--resamples", "200"]
    # one process: worker processes (the default) give the same report (the unit test
    # test_origins_in_worker_processes_give_the_serial_result) for 4 s more CPU here
    args += ["--jobs", "1"]
    report = json_of(run_cli([*args, "--out", str(tmp_path), "--json"], env, timeout=600))

    assert report["timezone"] == "Europe/London" and report["window_days"] == 14
    origins = [o["origin"] for o in report["origins"]]
    assert origins == ["2011-10-28", "2011-11-11"]
    assert report["origins"][0]["cutoff"] == "2011-10-28T00:00:00+01:00"  # summer time
    assert report["origins"][0]["end"] == "2011-11-11T00:00:00+00:00"  # 14 days and 1 hour
    assert report["origins"][1]["cutoff"] == "2011-11-11T00:00:00+00:00"
    assert report["served"] == "shelfwise"
    assert "the served pipeline (Pipeline.offline" in report["served_label"]
    for o in report["origins"]:
        assert o["people"]["all"] > 15 and o["people"]["new"] > 10
        served = {m["name"]: m for m in o["models"]}
        for name in ("shelfwise", "shelfwise blend"):
            # no rule but the built-in in-stock one, and the catalog's stock is unknown
            assert served[name]["targets_forbidden_by_rules"] == {"all": 0, "new": 0}
        assert o["target_items"]["all"] >= o["people"]["all"]
        assert {m["name"] for m in o["models"]} == PEERS | {"shelfwise", "shelfwise blend"}
        # the rank stage was chosen on the validation window: the blend or one ranker design
        choice = o["notes"]["ranker_choice[shelfwise]"]
        scores = choice["validation_ndcg@10"]
        assert set(scores) == {
            "blend",
            "ranker(windows=5, leaves=63)",
            "ranker(windows=5, leaves=15)",
            "ranker(windows=3, leaves=63)",
        }
        assert choice["chosen"] == max(scores, key=lambda n: (scores[n], n == "blend"))
        # the new-items shelf (the `new` lists) chose its own, on the new-items requests:
        # the same designs trained on all-items requests or on both kinds, or its blend
        shelf = o["notes"]["new_items[shelfwise]"]
        new_scores = shelf["validation_ndcg@10"]
        both = {f"{n[:-1]}, new-item requests)" for n in scores if n != "blend"}
        assert set(new_scores) == set(scores) | both
        assert shelf["chosen"] == max(new_scores, key=lambda n: (new_scores[n], n == "blend"))
        assert o["notes"]["ease"]["all"]["params"]["regularization"] in (100.0, 500.0, 2000.0)
        assert set(o["notes"]["blend[all]"]["weights"]) <= {
            "buy_again",
            "cooccurrence",
            "regression",
            "factors",
            "content",
            "popular",
        }
    comparisons = report["intervals"]["comparisons"]
    scopes = {c["scope"] for c in comparisons}
    assert scopes == {"2011-10-28", "2011-11-11", "pooled"}
    assert {c["metric"] for c in comparisons} == {"ndcg", "recall", "map", "revenue_recall"}
    pooled = [c for c in comparisons if c["scope"] == "pooled" and c["metric"] == "ndcg"]
    assert {c["peer"] for c in pooled} == PEERS
    for c in pooled:
        r = c["ratio"]
        assert r["low"] <= r["mean"] <= r["high"], c
        assert r["mean"] == pytest.approx(c["model_value"]["mean"] / c["peer_value"]["mean"])
    for protocol in ("all", "new"):
        s = report["summary"][protocol]
        best = max(
            (c for c in pooled if c["protocol"] == protocol),
            key=lambda c: c["peer_value"]["mean"],
        )
        assert s["best_peer"] == best["peer"] and set(s["origins"]) == set(origins)
    text = (tmp_path / "backtest.md").read_text()
    assert "midnight Europe/London" in text and "2011-10-28 00:00 BST" in text
    assert "the rules in force forbid 0 of" in text
