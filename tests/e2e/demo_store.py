"""A demo store for the dashboard and monitoring e2e tests: catalog, a week of
recommendation traffic ending now (half of the home page in an A/B test), and
one open alert. Rules and served slates are added over HTTP by the tests."""

from __future__ import annotations

from datetime import timedelta

from shelfwise.config import Settings
from shelfwise.contracts import EventStore
from shelfwise.experiments import ExperimentSpec
from shelfwise.experiments.assignment import arm_for
from shelfwise.monitoring.alerts import Alert, AlertStore, dashboard_path
from shelfwise.monitoring.series import floor_hour
from shelfwise.runtime import Runtime
from shelfwise.simulate import CatalogSpec, generate_catalog
from shelfwise.store.types import utcnow
from tests.monitoring_data import make_events

DAYS = 7
EXPERIMENT = "home-picks-ab"


def seed_demo_store(settings: Settings) -> None:
    runtime = Runtime.open(settings, load=False)
    try:
        products = generate_catalog(CatalogSpec(n_products=300, seed=7))
        runtime.catalog.upsert(products, source="demo")
        start = floor_hour(utcnow()) - timedelta(days=DAYS)
        experiment = runtime.experiments.create(
            ExperimentSpec.model_validate(
                {
                    "experiment_id": EXPERIMENT,
                    "name": "Home top picks: ranked vs popular",
                    "placement": "home",
                    "arms": [
                        {"name": "popular", "share": 0.5, "sources": ["popular"]},
                        {"name": "ranked", "share": 0.5},
                    ],
                    "start": start.isoformat(),
                    "pre_period_days": 0,
                    "guardrails": [{"metric": "ctr", "margin": 0.1}],
                }
            ),
            by="demo",
        )

        def arm_of(placement: str, person: str) -> tuple[str, str] | None:
            if placement != "home_top_picks":
                return None
            return EXPERIMENT, arm_for(experiment, person).name

        EventStore(runtime.db).append(
            make_events(products, start, DAYS, seed=1, slates_per_hour=1, arm_of=arm_of)
        )
        now = floor_hour(utcnow())
        AlertStore(runtime.db).save(
            Alert(
                alert_id="demo-alert-1",
                placement="home_top_picks",
                category="bedding",
                severity="page",
                status="open",
                stage="click_through",
                # Last seen losing a day ago: quiet for longer than alert_resolve_after_hours,
                # so the next evaluation of a calm store resolves it.
                since=now - timedelta(hours=27),
                opened_at=now - timedelta(hours=24),
                updated_at=now - timedelta(hours=24),
                resolved_at=None,
                at_risk_per_hour=1234.5,
                expected_per_hour=60_000.0,
                observed_per_hour=58_765.5,
                burn_rate=12.345,
                p_value=1e-6,
                window_hours=3,
                currency=settings.currency,
                dashboard_path=dashboard_path("home_top_picks", "bedding"),
                notified_at=None,
            )
        )
    finally:
        runtime.close()
