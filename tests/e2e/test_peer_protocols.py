"""The peer protocols through the real CLI, on slices of the real data sets.

``shelfwise evaluate --protocol session-next-item`` on the last nine weeks of
DIGINETICA's sample views and ``--protocol basket-completion`` on Online
Retail from mid-October 2011, its 1,000 most-bought items (the dense inverses
of EASE and the basket_ease source are cubic in the items: the whole catalog
tripled this test's CPU), a week of validation: every model is reported with
its interval, the ratio to the best peer with its own, the choices made on
validation and the path that answered. Quality is the benchmark's claim
(``benchmarks/peer_protocols.py``), not asserted here.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from shelfwise.config import Settings
from shelfwise.evaluation.cart_choice import BUY_AGAIN_WEIGHTS, REGULARIZATIONS
from shelfwise.importers import load_source
from shelfwise.importers.registry import read_dataset
from shelfwise.runtime import Runtime
from tests.datasets import shared_data
from tests.e2e.server import json_of, run_cli, settings_env

DATA = shared_data()


def sliced_diginetica(folder: Path, since: str = "2016-03-20") -> Path:
    src = DATA / "diginetica"
    if not (src / "sample_train-item-views.csv").is_file():
        pytest.fail(f"DIGINETICA is missing at {src}")
    folder.mkdir()
    with (src / "sample_train-item-views.csv").open(newline="") as fh:
        views = [r for r in csv.DictReader(fh, delimiter=";") if r["eventdate"] >= since]
    with (folder / "sample_train-item-views.csv").open("w", newline="") as fh:
        out = csv.DictWriter(fh, fieldnames=list(views[0]), delimiter=";")
        out.writeheader()
        out.writerows(views)
    (folder / "train-purchases.csv").write_text(
        "sessionId;userId;timeframe;eventdate;ordernumber;itemId\n"
    )
    named = {r["item_id"] for r in views}
    with (src / "product-categories.csv").open() as fh:
        lines = [next(fh), *(ln for ln in fh if ln.split(";", 1)[0] in named)]
    (folder / "product-categories.csv").write_text("".join(lines))
    return folder


def load(env: dict[str, str], name: str, path: Path) -> None:
    json_of(
        run_cli(["events", "load-dataset", name, "--path", str(path), "--json"], env, timeout=600)
    )


def check_report(
    report: dict[str, Any],
    metrics: tuple[str, ...],
    peers: set[str],
    own: frozenset[str] = frozenset(),
) -> None:
    assert set(report["models"]) == {"shelfwise", *peers, *own}
    for name, m in report["models"].items():
        assert m["served"] == (name == "shelfwise")
        assert m["own"] == (name in own)
        for metric in metrics:
            cell = m[metric]
            assert 0.0 <= cell["low"] <= cell["mean"] <= cell["high"] <= 1.0, (name, metric, cell)
    for metric in metrics:
        r = report["ratios"][metric]
        assert r["best_peer"] in peers
        best = report["models"][r["best_peer"]][metric]["mean"]
        assert best == max(report["models"][p][metric]["mean"] for p in peers)
        if best > 0:
            mine = report["models"]["shelfwise"][metric]["mean"]
            assert r["ratio"]["mean"] == pytest.approx(mine / best)
            assert r["ratio"]["low"] <= r["ratio"]["mean"] <= r["ratio"]["high"]
    assert "served Pipeline" in report["served_label"]
    assert "ranker" in report["served_label"]


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_session_next_item_through_the_cli(sqlite_settings: Settings, tmp_path: Path) -> None:
    env = settings_env(sqlite_settings)
    load(env, "diginetica", sliced_diginetica(tmp_path / "dn", "2016-04-01"))
    args = ["evaluate", "--protocol", "session-next-item", "--validation-days", "28"]
    args += ["--resamples", "200", "--out", str(tmp_path / "out"), "--json"]
    report = json_of(run_cli(args, env, timeout=1100))
    assert report["protocol"] == "session-next-item" and report["k"] == 20
    assert report["windows"] == {
        "validation": "2016-04-21..2016-05-18",
        "test": "2016-05-19..2016-06-01",
    }
    assert report["counts"]["test predictions"] >= report["counts"]["test sessions"] > 50
    check_report(report, ("hr", "mrr"), {"popularity", "item_knn", "sknn", "vsknn"})
    chosen = report["models"]["shelfwise"]["chosen"]
    assert chosen["placement"] in {"home", "product_similar", "product_bought_with"}
    assert set(report["models"]["vsknn"]["chosen"]) == {"k", "sample", "weighting", "idf"}
    markdown = (tmp_path / "out" / "session-next-item.md").read_text()
    assert markdown.count("| sknn |") == 1
    # every product placement's test slates are judged against the viewed product
    assert set(report["coherence"]) == {"product_similar", "product_bought_with"}
    similar = report["coherence"]["product_similar"]
    assert similar["slates"] == report["counts"]["test predictions"]
    assert similar["empty_slates"] == 0 and similar["items_shown"] > 10 * similar["slates"]
    # substitutes from the views' categories: nearly all in the viewed product's own
    assert similar["same_category"] > 0.9 and similar["median_price_ratio"] is None
    assert 0.0 < similar["top_item_share"] < 0.5 and 0.0 < similar["coverage"] <= 1.0
    assert "Coherence of `product_similar`'s test slates" in markdown


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_basket_completion_through_the_cli(sqlite_settings: Settings, tmp_path: Path) -> None:
    src = DATA / "online_retail" / "online_retail.parquet"
    if not src.is_file():
        pytest.fail(f"Online Retail is missing at {src}")
    table = pq.read_table(src)
    dates = pc.cast(table["InvoiceDate"], "timestamp[s]")
    recent = table.filter(pc.greater_equal(dates, pc.strptime("2011-10-20", "%Y-%m-%d", "s")))
    counts = pc.value_counts(recent["StockCode"])
    order = np.argsort(-np.asarray(counts.field("counts")), kind="stable")[:1000]
    recent = recent.filter(pc.is_in(recent["StockCode"], counts.field("values").take(order)))
    (tmp_path / "online_retail").mkdir()
    path = tmp_path / "online_retail" / "online_retail.parquet"
    pq.write_table(recent, path)
    env = settings_env(sqlite_settings)
    load(env, "online_retail", path)
    args = ["evaluate", "--protocol", "basket-completion", "--cutoff", "2011-11-25"]
    args += ["--window-days", "15", "--validation-days", "7", "--resamples", "200"]
    report = json_of(run_cli([*args, "--out", str(tmp_path / "out"), "--json"], env, timeout=1100))
    assert report["protocol"] == "basket-completion" and report["k"] == 10
    assert report["windows"] == {
        "validation": "2011-11-18..2011-11-24",
        "test": "2011-11-25..2011-12-09",
    }
    assert report["counts"]["test baskets"] > 300
    peers = {"cooccurrence", "popularity", "item_knn", "ease"}
    check_report(
        report, ("ndcg", "hr"), peers, frozenset({"shelfwise, anonymous cart", "ease_history"})
    )
    chosen = report["models"]["shelfwise"]["chosen"]
    assert chosen["placement"] == "cart"
    assert chosen["basket_ease_regularization"] in REGULARIZATIONS
    assert chosen["buy_again_weight"] in BUY_AGAIN_WEIGHTS
    assert chosen["ranker"] in {"cart task", "blend"}
    assert report["counts"]["test baskets of shoppers with history"] > 0
    notes = " ".join(report["notes"])
    assert "name the shopper" in notes and "buy_again weight 4: " in notes


def test_bad_protocol_and_empty_window_are_clear_errors(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    # the store is filled in this process (the CLI's load is the tests above'): the
    # errors are the claim, each from its own `shelfwise evaluate`
    rt = Runtime.open(sqlite_settings, load=False)
    try:
        data = read_dataset("diginetica", sliced_diginetica(tmp_path / "dn", "2016-05-25"), DATA)
        assert load_source(data, rt.catalog, rt.bulk_ingestor()).events["accepted"] > 0
    finally:
        rt.close()
    env = settings_env(sqlite_settings)
    bad = run_cli(["evaluate", "--protocol", "nonsense"], env)
    assert bad.returncode == 2 and "bad_protocol" in bad.stderr + bad.stdout
    empty = run_cli(["evaluate", "--protocol", "session-next-item", "--cutoff", "2020-01-01"], env)
    assert empty.returncode == 2 and "empty_window" in empty.stderr + empty.stdout
    assert "no test sessions" in empty.stderr + empty.stdout  # the window, not the log
