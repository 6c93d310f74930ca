"""``shelfwise train`` on a small store: the guard refuses below its minimum of people,
prints its comparison as a table, and ``--force`` promotes anyway."""

from __future__ import annotations

import json
from pathlib import Path

from shelfwise.config import Settings
from shelfwise.runtime import Runtime
from tests.e2e.server import json_of, run_cli, settings_env
from tests.shop_fixture import fill

REFUSED = 3


def test_the_guard_refuses_below_its_minimum_and_force_promotes(
    sqlite_settings: Settings,
) -> None:
    runtime = Runtime.open(sqlite_settings)
    fill(runtime)
    runtime.close()
    env = settings_env(sqlite_settings)
    current = sqlite_settings.model_dir / "CURRENT"

    first = json_of(run_cli(["train", "--json"], env))
    people = first["guard"]["people"]
    assert 0 < people < 200
    assert first["promoted"] and first["decision"] == f"first bundle, judged on {people} people"
    assert current.read_text().strip() == first["version"]

    # The default minimum is 200 people: refused, the bundle written but not served.
    shown = run_cli(["train"], env)
    assert shown.returncode == REFUSED, shown.stdout + shown.stderr
    out = " ".join(shown.stdout.split())
    assert f"promotion guard (current bundle: {first['version']})" in out
    for column in ("metric", "current bundle", "candidate", "delta", "verdict"):
        assert column in out
    assert "below the minimum of 200" in out and "ndcg@10" in out and "recall@20" in out
    assert f"not promoted: the guard judged {people} people, below the minimum of 200" in out
    assert current.read_text().strip() == first["version"]

    refused = run_cli(["train", "--json"], env)
    assert refused.returncode == REFUSED
    data = json.loads(refused.stdout)
    assert not data["promoted"] and data["previous"] == first["version"]
    assert data["guard"]["min_people"] == 200 and not data["guard"]["passed"]
    assert [r["metric"] for r in data["guard"]["rows"]] == ["people", "ndcg@10", "recall@20"]
    stored = json.loads((Path(data["path"]) / "bundle.json").read_text())["metrics"]
    assert stored["guard_people"] == people and stored["guard_passed"] == 0.0
    assert stored["guard_min_people"] == 200.0 and "delta_ndcg@10" in stored
    assert current.read_text().strip() == first["version"]

    forced = json_of(run_cli(["train", "--json", "--force"], env))
    assert forced["promoted"] and forced["decision"].startswith("forced over the guard: ")
    assert current.read_text().strip() == forced["version"]

    # A lower minimum (same config, same data: no worse) promotes without force.
    lowered = json_of(run_cli(["train", "--json", "--min-people", str(people)], env))
    assert lowered["promoted"] and lowered["guard"]["passed"]
    assert lowered["decision"].startswith("ndcg@10 ")
