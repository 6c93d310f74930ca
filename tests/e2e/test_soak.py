"""The soak benchmark, short: a real server under mixed load answers without one error and
its memory levels off. ``SHELFWISE_SOAK_SECONDS`` sets the length (default 45, at most 60)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from benchmarks.soak import ascii_curve, growth, parser, soak


def test_growth_is_measured_after_the_warmup() -> None:
    flat = [(float(t), 100.0 + min(t, 10) * 2) for t in range(0, 61, 5)]
    got = growth(flat, warmup=10)
    assert (got["first_half_mb"], got["second_half_mb"], got["levels_off"]) == (0.0, 0.0, True)
    leaking = [(float(t), 100.0 + t) for t in range(0, 61, 5)]
    got = growth(leaking, warmup=10)
    assert (got["first_half_mb"], got["second_half_mb"], got["levels_off"]) == (25.0, 25.0, False)
    assert ascii_curve(leaking, rows=2).splitlines()[0].startswith("      0 s   100.0 MB |")


@pytest.mark.slow
def test_short_soak_has_no_errors_and_flat_memory(tmp_path: Path) -> None:
    seconds = min(float(os.environ.get("SHELFWISE_SOAK_SECONDS", "45")), 60.0)
    args = parser().parse_args(
        ["--seconds", str(seconds), "--sample-every", "2", "--workdir", str(tmp_path / "soak")]
    )
    result = soak(args)
    assert result["errors"] == 0, result["error_examples"]
    assert result["server_alive"]
    kinds = result["latency"]
    assert {"recommend", "ingest", "rule_edit", "reload"} <= set(kinds)
    assert kinds["recommend"]["n"] > 20 * seconds  # the paced load really ran
    assert result["events_ingested"] >= 20 * seconds
    memory = result["memory"]
    assert memory["levels_off"], (memory, ascii_curve(result["rss_mb"]))
    assert memory["end_mb"] - memory["start_mb"] < 64, memory
