"""Experiments through the real CLI and the real HTTP server."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2 as httpx

from shelfwise.config import Settings
from shelfwise.contracts.eventstore import EventStore
from shelfwise.experiments.synthetic import World
from shelfwise.runtime import Runtime
from tests.conftest import headers
from tests.e2e.server import json_of, run_cli, running_server, settings_env


def _spec_file(tmp_path: Path, world: World) -> Path:
    path = tmp_path / "exp.json"
    path.write_text(world.spec().model_dump_json())
    return path


def test_cli_create_list_report_stop(sqlite_settings: Settings, tmp_path: Path) -> None:
    # One backend: the CLI is the same code over either; the store is covered by integration.
    settings = sqlite_settings
    env = settings_env(settings)
    world = World(persons=600)
    created = json_of(
        run_cli(["experiments", "create", str(_spec_file(tmp_path, world)), "--json"], env)
    )
    assert (created["version"], created["status"]) == (1, "running")
    runtime = Runtime.open(settings, load=False)
    try:
        runtime.catalog.upsert(world.catalog())
        EventStore(runtime.db).append(world.events(runtime.experiments.get("recs-vs-holdout")))
    finally:
        runtime.close()
    listed = json_of(run_cli(["experiments", "list", "--json"], env))
    assert [e["spec"]["experiment_id"] for e in listed] == ["recs-vs-holdout"]
    report = json_of(run_cli(["experiments", "report", "recs-vs-holdout", "--json"], env))
    assert sum(report["srm"]["counts"].values()) == 600
    assert report["cells"][0]["placement"] == "all"
    table = run_cli(["experiments", "report", "recs-vs-holdout"], env)
    assert table.returncode == 0 and "revenue_per_person" in table.stdout
    stale = run_cli(["experiments", "stop", "recs-vs-holdout", "--version", "7"], env)
    assert stale.returncode == 2 and "version_conflict" in stale.stderr
    stopped = json_of(run_cli(["experiments", "stop", "recs-vs-holdout", "--json"], env))
    assert stopped["status"] == "stopped"
    plan = json_of(
        run_cli(
            ["experiments", "plan", "--baseline-mean", "10", "--baseline-sd", "30",
             "--persons", "20000", "--json"], env,
        )
    )  # fmt: skip
    assert plan["persons_needed_per_arm"] == 56_512
    assert run_cli(["experiments", "report", "--help"], env).returncode == 0


def test_http_crud_with_etags_and_report(settings: Settings) -> None:
    spec = json.loads(World().spec().model_dump_json())
    with running_server(settings_env(settings)) as base, httpx.Client(timeout=30) as api:
        m, r = headers("merchandiser"), headers("read")
        assert api.post(f"{base}/v1/experiments", json=spec, headers=r).status_code == 403
        made = api.post(f"{base}/v1/experiments", json=spec, headers=m)
        assert made.status_code == 201 and made.headers["etag"] == '"1"'
        again = api.post(f"{base}/v1/experiments", json=spec, headers=m)
        assert again.status_code == 409 and again.json()["error"]["code"] == "experiment_exists"
        url = f"{base}/v1/experiments/recs-vs-holdout"
        got = api.get(url, headers=r)
        assert got.json()["version"] == 1 and got.headers["etag"] == '"1"'
        renamed = {**spec, "name": "renamed"}
        no_tag = api.put(url, json=renamed, headers=m)
        assert no_tag.status_code == 428
        ok = api.put(url, json=renamed, headers={**m, "If-Match": '"1"'})
        assert ok.status_code == 200 and ok.headers["etag"] == '"2"'
        stale = api.put(url, json=spec, headers={**m, "If-Match": '"1"'})
        assert stale.status_code == 409
        assert stale.json()["error"]["code"] == "version_conflict"
        bad = api.post(f"{base}/v1/experiments", json={**spec, "extra": 1}, headers=m)
        assert bad.status_code == 422
        # A baseline rate plans a proportion; revenue per person is not one.
        unplanned = {**spec, "experiment_id": "x", "baseline_rate": 0.1}
        refused = api.post(f"{base}/v1/experiments", json=unplanned, headers=m)
        assert refused.status_code == 422 and "baseline_rate" in refused.text
        report = api.get(f"{url}/report", headers=r)
        assert report.status_code == 200
        body = report.json()
        assert body["experiment_id"] == "recs-vs-holdout" and "NO_EXPOSURES" in body["warnings"]
        # Nobody exposed: no verdict, N per arm against the minimum, no date to promise.
        assert (body["status"], body["srm"]["status"]) == ("collecting_data", "not_enough_data")
        assert body["sample"] == {
            "persons_per_arm": {"holdout": 0, "recs": 0},
            "min_persons_per_arm": 100,
            "min_source": "default",
            "daily_persons_per_arm": {"holdout": 0.0, "recs": 0.0},
            "expected_date": None,
        }
        stopped = api.post(f"{url}/stop", headers={**m, "If-Match": '"2"'})
        assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"
        listed = api.get(f"{base}/v1/experiments?status=stopped", headers=r).json()
        assert [e["version"] for e in listed] == [3]
        history = api.get(f"{url}/history", headers=r).json()
        assert [h["version"] for h in history] == [1, 2, 3]
        assert api.get(f"{base}/v1/experiments/nope", headers=r).status_code == 404
