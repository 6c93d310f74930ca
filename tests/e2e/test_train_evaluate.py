"""``shelfwise train`` and ``shelfwise evaluate`` end to end, and the reload endpoint."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2 as httpx

from shelfwise.config import Settings
from shelfwise.runtime import Runtime
from tests.conftest import headers
from tests.e2e.server import json_of, run_cli, running_server, settings_env
from tests.shop_fixture import fill


def test_train_evaluate_and_reload(sqlite_settings: Settings, tmp_path: Path) -> None:
    runtime = Runtime.open(sqlite_settings)
    fill(runtime)
    runtime.close()
    env = settings_env(sqlite_settings)

    first = json_of(run_cli(["train", "--json"], env))
    assert first["promoted"] and first["decision"].startswith("first bundle, judged on ")
    assert first["counts"]["items"] == 32 and first["counts"]["people"] == 48
    assert set(first["timings"]) >= {"read events", "fit cooccurrence", "fit factors"}
    folder = Path(first["path"])
    assert (folder / "MANIFEST.json").is_file()
    assert (sqlite_settings.model_dir / "CURRENT").read_text().strip() == first["version"]

    second = json_of(run_cli(["train", "--json", "--no-promote"], env))
    assert not second["promoted"] and second["previous"] == first["version"]

    out = tmp_path / "report"
    report = json_of(
        run_cli(
            ["evaluate", "--json", "--cutoff", "2024-02-15", "--out", str(out), "--no-tune"], env
        )
    )
    names = [m["name"] for m in report["models"]]
    assert names == [
        "popularity",
        "recent_popularity",
        "item_knn",
        "implicit_als",
        "ease",
        "past_then_popular",
        "shelfwise",
    ]
    assert report["people"]["all"] > 0
    for m in report["models"]:
        for k in ("10", "20"):
            assert 0.0 <= m["metrics"]["all"][k]["ndcg"] <= 1.0
    assert json.loads((out / "evaluation.json").read_text())["ks"] == [10, 20]
    page = (out / "evaluation.html").read_text()
    assert "<script src=" not in page and "Plotly" in page

    with running_server(env) as base, httpx.Client(timeout=30) as api:
        state = api.get(f"{base}/v1/models", headers=headers("read")).json()
        assert state["loaded"]["version"] == first["version"]
        denied = api.post(f"{base}/v1/models/reload", headers=headers("read"))
        assert denied.status_code == 403
        got = api.post(
            f"{base}/v1/models/reload",
            headers=headers("admin"),
            json={"version": second["version"]},
        )
        assert got.status_code == 200, got.text
        assert got.json()["loaded"]["version"] == second["version"]
        assert got.json()["previous"] == first["version"]
        # A partial bundle (no manifest) is refused; the served one stays.
        partial = sqlite_settings.model_dir / "20990101T000000000000-partial"
        partial.mkdir()
        refused = api.post(
            f"{base}/v1/models/reload", headers=headers("admin"), json={"version": partial.name}
        )
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "bundle_incomplete"
        state = api.get(f"{base}/v1/models", headers=headers("read")).json()
        assert state["loaded"]["version"] == second["version"]
