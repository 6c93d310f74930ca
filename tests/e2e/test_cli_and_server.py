"""Drive the real CLI and the real multi-worker HTTP server."""

from __future__ import annotations

from pathlib import Path

import httpx2 as httpx

from shelfwise.catalog import read_feed
from shelfwise.config import Settings
from shelfwise.runtime import Runtime
from tests.conftest import KEYS
from tests.e2e.server import json_of, run_cli, run_cli_session, running_server, settings_env

FEED = """product_id,title,category_path,brand,price,currency,stock_qty
A1,Linen duvet,bedding/duvets,Softloom,59,EUR,5
A2,Oak table,decor,Oakmoor,abc,EUR,2
A3,Candle,decor/candles,Gleam,12,EUR,0
A4,Mug,kitchen,,8,XYZ,3
"""


def test_help_on_every_command(sqlite_settings: Settings) -> None:
    # One process renders each help through the CLI's entry point (run_cli_session).
    calls = [["--help"], ["serve", "--help"], ["catalog", "import", "--help"], ["db", "--help"]]
    for args, r in zip(calls, run_cli_session(calls, settings_env(sqlite_settings)), strict=True):
        assert r.returncode == 0 and "Usage" in r.stdout, args


def test_catalog_import_report_and_idempotent_reimport(settings: Settings, tmp_path: Path) -> None:
    env = settings_env(settings)
    feed = tmp_path / "feed.csv"
    feed.write_text(FEED)
    first, again, report = (
        json_of(r)
        for r in run_cli_session(
            [
                ["catalog", "import", str(feed), "--json"],
                ["catalog", "import", str(feed), "--json"],
                ["catalog", "report", "--json"],
            ],
            env,
        )
    )
    assert (first["received"], first["inserted"], first["rejected"]) == (4, 2, 2)
    reasons = {r["product_id"]: r["errors"][0]["field"] for r in first["rejections"]}
    assert reasons == {"A2": "price", "A4": "currency"}
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, 2)
    assert report["overall"]["products"] == 2
    assert report["out_of_stock_share"] == 0.5


def test_bad_config_is_a_clear_error(sqlite_settings: Settings, tmp_path: Path) -> None:
    # Once, on SQLite: the config file is missing before any database is opened.
    r = run_cli(
        ["--config", str(tmp_path / "none.yaml"), "catalog", "report"],
        settings_env(sqlite_settings),
    )
    assert r.returncode == 2
    assert "config_file_missing" in r.stderr and "Traceback" not in r.stderr


def test_stock_change_reaches_every_worker(settings: Settings, tmp_path: Path) -> None:
    env = settings_env(settings)
    feed = tmp_path / "feed.csv"
    feed.write_text(FEED)
    # The feed imported in this process, as `catalog import` does (that command is
    # driven by test_catalog_import_report_and_idempotent_reimport): A1 in stock.
    runtime = Runtime.open(settings, load=False)
    try:
        runtime.catalog.upsert(read_feed(feed, None, settings.currency).products, source="feed")
    finally:
        runtime.close()
    admin = {"X-API-Key": KEYS["admin"]}
    # A request's time limit guards against a hung server, as everywhere else here (30 s):
    # a worker's first requests may take more than 5 s on a loaded machine.
    with running_server(env, workers=2) as base, httpx.Client(base_url=base, timeout=30) as c:
        r = c.patch("/v1/products/A1", json={"stock_qty": 0}, headers=admin)
        assert r.status_code == 200
        # New connections spread over both workers; each must see the change.
        seen = set()
        for _ in range(12):
            with httpx.Client(base_url=base, timeout=30) as fresh:
                seen.add(fresh.get("/v1/products/A1", headers=admin).json()["stock_qty"])
        assert seen == {0}
