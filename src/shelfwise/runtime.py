"""The running system's parts, built once from Settings and passed in (no globals).

The API and the CLI both open a Runtime; each stage adds what it needs here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shelfwise.access import KeyRing, KeyStore
from shelfwise.catalog import CatalogRepository, CatalogSnapshot
from shelfwise.config import Settings
from shelfwise.dashboard.slots import SlotProvider
from shelfwise.experiments import ExperimentRepository, RunningExperiments
from shelfwise.monitoring.decisions import DecisionLogReader, EmptyDecisionLog
from shelfwise.store import Database, connect, upgrade


@dataclass
class Runtime:
    settings: Settings
    db: Database
    catalog: CatalogRepository
    snapshot: CatalogSnapshot
    keyring: KeyRing
    experiments: ExperimentRepository = field(init=False)
    assignments: RunningExperiments = field(init=False)
    # What was served (the serving area attaches the real decision log).
    decisions: DecisionLogReader = field(default_factory=EmptyDecisionLog)
    # Dashboard panels other areas fill in, by slot name (see shelfwise.dashboard.slots).
    dashboard_slots: dict[str, SlotProvider] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.experiments = ExperimentRepository(self.db)
        self.assignments = RunningExperiments(
            self.experiments, self.settings.experiment_refresh_seconds
        )

    @classmethod
    def open(cls, settings: Settings, *, migrate: bool = True, load: bool = True) -> Runtime:
        db = connect(settings)
        if migrate:
            upgrade(db)
        catalog = CatalogRepository(db)
        snapshot = CatalogSnapshot(catalog, refresh_seconds=settings.catalog_refresh_seconds)
        if load:
            snapshot.load()
        keyring = KeyRing(settings.api_keys, KeyStore(db), enabled=settings.auth_enabled)
        return cls(settings=settings, db=db, catalog=catalog, snapshot=snapshot, keyring=keyring)

    def close(self) -> None:
        self.db.dispose()
