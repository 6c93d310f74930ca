"""``shelfwise simulate`` through the real CLI: files, determinism, and a real server."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2 as httpx

from shelfwise.catalog.feed import read_feed
from shelfwise.config import Settings
from shelfwise.contracts.events import parse_event
from tests.conftest import KEYS
from tests.e2e.server import json_of, run_cli, running_server, settings_env

ARGS = ["simulate", "--seed", "4", "--products", "200", "--people", "120", "--days", "6"]
DEFECTS = ["--safari-cart-loss", "0.5", "--id-format-share", "0.5", "--stockout-brand", "Vireo"]


def test_simulate_writes_the_same_files_for_the_same_seed(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    first = json_of(run_cli([*ARGS, *DEFECTS, "--out", str(tmp_path / "a"), "--json"], env))
    second = json_of(run_cli([*ARGS, *DEFECTS, "--out", str(tmp_path / "b"), "--json"], env))
    assert first["products"] == 200 and first["events"] == second["events"] > 500
    for name in first["files"]:
        assert Path(first["files"][name]).read_bytes() == Path(second["files"][name]).read_bytes()
    out = tmp_path / "a"
    csv_feed, jsonl_feed = read_feed(out / "catalog.csv"), read_feed(out / "catalog.jsonl")
    assert csv_feed.rejected == [] and jsonl_feed.rejected == []
    assert csv_feed.products == jsonl_feed.products and len(csv_feed.products) == 200
    lines = (out / "events.jsonl").read_text().splitlines()
    assert len(lines) == first["events"]
    assert all(parse_event(json.loads(line)) for line in lines)
    truth = json.loads((out / "ground_truth.json").read_text())
    assert set(truth["defects"]) == {"safari_cart_loss", "id_format", "supplier_stockout"}
    assert truth["spec"]["seed"] == 4


def test_simulate_needs_one_destination_and_known_names(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    r = run_cli(ARGS, env)
    assert r.returncode == 2 and "--out" in r.stderr
    r = run_cli([*ARGS, "--out", str(tmp_path), "--stockout-brand", "Nobody"], env)
    assert r.returncode == 2 and "Nobody" in r.stderr
    assert run_cli(["simulate", "--help"], env).returncode == 0


def test_simulate_posts_the_catalog_to_a_running_server(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    env = settings_env(sqlite_settings)
    with running_server(env, cwd=tmp_path) as base:
        summary = json_of(
            run_cli([*ARGS, "--url", base, "--api-key", KEYS["admin"], "--json"], env, cwd=tmp_path)
        )
        assert summary["posted"]["products"]["inserted"] == 200
        assert summary["posted"]["events"]["sent"] == summary["events"]
        r = httpx.get(f"{base}/v1/products?limit=1", headers={"X-API-Key": KEYS["read"]})
        assert r.json()["total"] == 200
