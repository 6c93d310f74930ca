"""The running system's parts, built once from Settings and passed in (no globals).

The API and the CLI both open a Runtime; each stage adds what it needs here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from shelfwise.catalog import CatalogRepository, CatalogSnapshot
from shelfwise.config import Settings
from shelfwise.rules.live import LiveRulebook, RedisVersion
from shelfwise.rules.model import Rule
from shelfwise.rules.store import RuleStore
from shelfwise.rules.validate import validate_rulebook
from shelfwise.store import Database, connect, upgrade
from shelfwise.store.types import utcnow

Clock = Callable[[], datetime]


@dataclass
class Runtime:
    settings: Settings
    db: Database
    catalog: CatalogRepository
    snapshot: CatalogSnapshot
    rules: LiveRulebook
    clock: Clock = utcnow  # what "now" is for rule windows and write-time validation

    @classmethod
    def open(
        cls,
        settings: Settings,
        *,
        migrate: bool = True,
        load: bool = True,
        clock: Clock = utcnow,
    ) -> Runtime:
        db = connect(settings)
        if migrate:
            upgrade(db)
        catalog = CatalogRepository(db)
        snapshot = CatalogSnapshot(catalog, refresh_seconds=settings.catalog_refresh_seconds)
        if load:
            snapshot.load()
        redis_version = (
            RedisVersion(settings.redis_url, settings.redis_prefix) if settings.redis_url else None
        )

        def check(rules: Sequence[Rule], changed: set[str]) -> None:
            if not len(snapshot):
                snapshot.load()
            snapshot.refresh(force=True)
            validate_rulebook(rules, changed, snapshot, clock())

        store = RuleStore(
            db,
            check=check,
            clock=clock,
            on_change=redis_version.publish if redis_version else None,
        )
        live = LiveRulebook(store, snapshot, redis_version)
        return cls(
            settings=settings, db=db, catalog=catalog, snapshot=snapshot, rules=live, clock=clock
        )

    def close(self) -> None:
        if self.rules.redis_version is not None:
            self.rules.redis_version.close()
        self.db.dispose()
