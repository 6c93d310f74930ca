"""The running system's parts, built once from Settings and passed in (no globals).

The API and the CLI both open a Runtime; each stage adds what it needs here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shelfwise.catalog import CatalogRepository, CatalogSnapshot
from shelfwise.config import Settings
from shelfwise.contracts.identity import IdentityGraph
from shelfwise.contracts.ingest import Ingestor
from shelfwise.contracts.reconcile import AliasTable
from shelfwise.store import Database, connect, upgrade


@dataclass
class Runtime:
    settings: Settings
    db: Database
    catalog: CatalogRepository
    snapshot: CatalogSnapshot
    # signals: the one ingestion path, the identity graph, product-id aliases
    identity: IdentityGraph = field(init=False)
    aliases: AliasTable = field(init=False)
    ingestor: Ingestor = field(init=False)

    def __post_init__(self) -> None:
        self.identity = IdentityGraph(self.db, max_ids=self.settings.identity_max_ids)
        self.aliases = AliasTable(self.db)
        self.ingestor = Ingestor(
            self.db,
            self.settings,
            known_product=self.known_product,
            observers=[self.identity],
        )

    def known_product(self, product_id: str) -> bool:
        """In the catalog snapshot or a known alias (call ``snapshot.refresh()`` per batch)."""
        return product_id in self.snapshot.vocab or self.aliases.target(product_id) is not None

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
