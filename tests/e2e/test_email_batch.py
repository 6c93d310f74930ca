"""``shelfwise email-batch`` through the real CLI: a slate per person, same rules and traces."""

from __future__ import annotations

import json
from pathlib import Path

from shelfwise.catalog import ProductPatch
from shelfwise.config import Settings
from shelfwise.rules import parse_rule
from shelfwise.runtime import Runtime
from tests import shop_fixture
from tests.e2e.server import json_of, run_cli, settings_env


def test_email_batch_for_a_segment_obeys_the_rules(settings: Settings, tmp_path: Path) -> None:
    rt = Runtime.open(settings)
    shop_fixture.fill(rt)
    rt.catalog.patch("KI2", ProductPatch(stock_qty=0))
    rule = {"id": "no-toys", "type": "suppress", "reason": "not in email", "values": ["toysco"]}
    rt.rules.store.save(parse_rule(rule), who="test", why="email policy")
    rt.close()
    out = tmp_path / "slates.jsonl"
    args = ["email-batch", "--segment", "active:90", "--out", str(out), "--k", "5", "--jobs", "2"]
    summary = json_of(
        run_cli(
            [*args, "--now", "2024-03-05T08:00:00+00:00", "--explain", "--json"],
            settings_env(settings),
        )
    )
    assert (summary["people"], summary["slates"]) == (48, 48)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(x["person"] for x in lines)[:3] == ["c0", "c1", "c10"]
    for slate in lines:
        got = [i["product_id"] for i in slate["items"]]
        assert len(got) == 5 and slate["placement"] == "email"
        assert "KI2" not in got  # out of stock
        assert not any(p.startswith("TO") for p in got)  # suppressed brand
        assert slate["trace"]["drops"].get("no-toys", 0) >= 0
    # People's own history shapes their slate: a kitchen buyer gets kitchen first.
    c0 = next(x for x in lines if x["person"] == "c0")
    assert c0["items"][0]["product_id"].startswith("KI")
    rt = Runtime.open(settings)
    try:
        rt.decisions.flush()
        assert len(rt.decisions.recent(placement="email", limit=100)) == 48
    finally:
        rt.close()


def test_email_batch_bad_segment_is_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    r = run_cli(
        ["email-batch", "--segment", "everyone", "--out", str(tmp_path / "x.jsonl")],
        settings_env(settings),
    )
    assert r.returncode == 2 and "segment_invalid" in r.stderr and "Traceback" not in r.stderr
