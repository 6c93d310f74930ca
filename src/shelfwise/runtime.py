"""The running system's parts, built once from Settings and passed in (no globals).

The API and the CLI both open a Runtime; each stage adds what it needs here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shelfwise.catalog import CatalogRepository, CatalogSnapshot
from shelfwise.config import Settings
from shelfwise.dashboard.slots import SlotProvider
from shelfwise.monitoring.decisions import DecisionLogReader, EmptyDecisionLog
from shelfwise.store import Database, connect, upgrade


@dataclass
class Runtime:
    settings: Settings
    db: Database
    catalog: CatalogRepository
    snapshot: CatalogSnapshot
    # What was served (the serving area attaches the real decision log).
    decisions: DecisionLogReader = field(default_factory=EmptyDecisionLog)
    # Dashboard panels other areas fill in, by slot name (see shelfwise.dashboard.slots).
    dashboard_slots: dict[str, SlotProvider] = field(default_factory=dict)

    @classmethod
    def open(cls, settings: Settings, *, migrate: bool = True, load: bool = True) -> Runtime:
        db = connect(settings)
        if migrate:
            upgrade(db)
        catalog = CatalogRepository(db)
        snapshot = CatalogSnapshot(catalog, refresh_seconds=settings.catalog_refresh_seconds)
        if load:
            snapshot.load()
        return cls(settings=settings, db=db, catalog=catalog, snapshot=snapshot)

    def close(self) -> None:
        self.db.dispose()
