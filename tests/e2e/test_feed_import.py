"""``shelfwise catalog import`` on Merchant Center and Shopify feeds, on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from shelfwise.config import Settings
from shelfwise.runtime import Runtime
from tests.e2e.server import json_of, run_cli, run_cli_session, settings_env

FEEDS = Path(__file__).parent.parent / "fixtures" / "feeds"


@pytest.mark.parametrize(
    ("name", "inserted", "rejected"),
    [("merchant_center.tsv", 5, 7), ("merchant_center.xml", 3, 3), ("shopify_products.csv", 6, 6)],
)
def test_import_reports_bad_lines_and_stores_the_rest(
    settings: Settings, tmp_path: Path, name: str, inserted: int, rejected: int
) -> None:
    env = settings_env(settings)
    rejects = tmp_path / "rejects.json"
    first, second = run_cli_session(
        [
            ["catalog", "import", str(FEEDS / name), "--json", "--rejects", str(rejects)],
            ["catalog", "import", str(FEEDS / name), "--json"],
        ],
        env,
    )
    out = json_of(first)
    assert (out["received"], out["inserted"], out["rejected"]) == (
        inserted + rejected,
        inserted,
        rejected,
    )
    assert all(r["row"] > 1 and r["errors"][0]["code"] for r in out["rejections"])
    assert rejects.read_text().count('"row"') == rejected
    again = json_of(second)
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 0, inserted)
    rt = Runtime.open(settings, load=False)
    try:
        stored = {p.product_id: p for p in rt.catalog.iter_all()}
    finally:
        rt.close()
    assert len(stored) == inserted
    if name == "shopify_products.csv":
        white = stored["DUV-200-W"]
        assert (white.variant_group, white.stock_qty, white.margin_band) == (
            "linen-duvet-cover",
            12,
            "high",
        )
        assert stored["THR-1"].active is False
    else:
        white = stored["DUV-200-W"]
        assert (white.price, white.shipping_sla_days, white.attributes["sale_price"]) == (
            89.0,
            1,
            69.0,
        )


def test_human_output_names_line_and_code(sqlite_settings: Settings) -> None:
    r = run_cli(
        ["catalog", "import", str(FEEDS / "merchant_center.tsv")], settings_env(sqlite_settings)
    )
    assert r.returncode == 0, r.stderr
    assert "5 inserted" in r.stdout and "7 rejected" in r.stdout
    assert "line 6 (LAMP-3)" in r.stdout and "[currency_mismatch]" in r.stdout


def test_store_currency_decides_and_format_can_be_forced(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    env = settings_env(sqlite_settings) | {"SHELFWISE_CURRENCY": "USD"}
    copy = tmp_path / "feed.dat"
    copy.write_bytes((FEEDS / "merchant_center.tsv").read_bytes())
    right, wrong = run_cli_session(
        [
            ["catalog", "import", str(copy), "--format", "gmc-tsv", "--json"],
            ["catalog", "import", str(copy), "--format", "shopify"],
        ],
        env,
    )
    assert json_of(right)["inserted"] == 2  # LAMP-3 in USD, BOARD-6 with a bare amount
    assert wrong.returncode != 0
    assert "feed_header_invalid" in wrong.stderr and "Traceback" not in wrong.stderr
