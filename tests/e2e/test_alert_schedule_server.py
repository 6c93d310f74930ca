"""``shelfwise serve`` evaluates alerts on its own schedule: with two workers and a
short interval the seeded alert of a calm demo store is resolved without any
call to ``/v1/alerts/evaluate``, and only one worker holds the lease."""

from __future__ import annotations

from pathlib import Path

import httpx2 as httpx
from sqlalchemy import select

from shelfwise.config import load_settings
from shelfwise.store import connect
from shelfwise.store.tables import leases
from tests.conftest import API_KEYS, KEYS
from tests.e2e.demo_store import seed_demo_store
from tests.e2e.server import running_server, settings_env
from tests.waiting import eventually


def test_the_server_resolves_the_calm_alert_on_its_own(tmp_path: Path) -> None:
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path / 'shelfwise.db'}", api_keys=API_KEYS, model_dir=tmp_path
    )
    seed_demo_store(settings)
    env = settings_env(settings, SHELFWISE_ALERT_EVALUATE_EVERY_SECONDS="0.5")
    with (
        running_server(env, workers=2) as base,
        httpx.Client(base_url=base, headers={"X-API-Key": KEYS["read"]}, timeout=30) as c,
    ):
        eventually(
            lambda: not c.get("/v1/alerts?status=open").json()["alerts"],
            "the schedule resolved the open alert",
            every=0.25,
        )
        (alert,) = c.get("/v1/alerts").json()["alerts"]
        assert alert["alert_id"] == "demo-alert-1" and alert["resolved_at"] is not None
        db = connect(settings)
        try:
            with db.engine.connect() as conn:
                holders = conn.execute(select(leases.c.name, leases.c.holder)).all()
        finally:
            db.dispose()
        assert [name for name, _ in holders] == ["alert-evaluation"]
