"""The running system's parts, built once from Settings and passed in (no globals).

The API and the CLI both open a Runtime; each stage adds what it needs here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shelfwise.catalog import CatalogRepository, CatalogSnapshot
from shelfwise.config import Settings
from shelfwise.pipeline import Recommender
from shelfwise.pipeline.assembly import build_recommender, known_sources
from shelfwise.serving import (
    DecisionLog,
    Placements,
    ServingMetrics,
    SessionState,
    load_placements,
)
from shelfwise.store import Database, connect, upgrade


@dataclass
class Runtime:
    settings: Settings
    db: Database
    catalog: CatalogRepository
    snapshot: CatalogSnapshot
    placements: Placements
    metrics: ServingMetrics
    sessions: SessionState
    decisions: DecisionLog
    _recommender: Recommender | None = field(default=None, repr=False)

    @classmethod
    def open(cls, settings: Settings, *, migrate: bool = True, load: bool = True) -> Runtime:
        placements = load_placements(settings)
        placements.check_sources(known_sources())
        db = connect(settings)
        if migrate:
            upgrade(db)
        catalog = CatalogRepository(db)
        snapshot = CatalogSnapshot(catalog, refresh_seconds=settings.catalog_refresh_seconds)
        if load:
            snapshot.load()
        metrics = ServingMetrics()
        return cls(
            settings=settings,
            db=db,
            catalog=catalog,
            snapshot=snapshot,
            placements=placements,
            metrics=metrics,
            sessions=SessionState.from_settings(settings, metrics.set_session_degraded),
            decisions=DecisionLog.from_settings(db, settings, metrics.drop_decisions),
        )

    @property
    def recommender(self) -> Recommender:
        """The request path, built on first use (the CLI's catalog commands never pay for it)."""
        if self._recommender is None:
            self._recommender = build_recommender(self)
        return self._recommender

    def close(self) -> None:
        if self._recommender is not None:
            self._recommender.clock.close()
        self.decisions.close()
        self.db.dispose()
