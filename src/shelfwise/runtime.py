"""The running system's parts, built once from Settings and passed in (no globals).

The API and the CLI both open a Runtime; each stage adds what it needs here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shelfwise.catalog import CatalogRepository, CatalogSnapshot
from shelfwise.config import Settings
from shelfwise.contracts.identity import IdentityGraph
from shelfwise.contracts.ingest import Ingestor
from shelfwise.contracts.reconcile import AliasTable
from shelfwise.store import Database, connect, upgrade

if TYPE_CHECKING:
    from shelfwise.training.bundle import ModelBundle


@dataclass
class Runtime:
    settings: Settings
    db: Database
    catalog: CatalogRepository
    snapshot: CatalogSnapshot
    # The promoted model bundle (None until one is trained). Requests read this
    # attribute once and keep their reference, so a reload swaps it atomically.
    bundle: ModelBundle | None = None
    bundle_error: str | None = None
    _reload_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
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
        runtime = cls(settings=settings, db=db, catalog=catalog, snapshot=snapshot)
        if load:
            from shelfwise.training.bundle import BundleError

            try:
                runtime.load_bundle(missing_ok=True)
            except BundleError as e:
                # Serve without a model rather than not at all; /v1/models shows it.
                runtime.bundle_error = e.message
        return runtime

    def load_bundle(
        self, version: str | None = None, *, missing_ok: bool = False
    ) -> ModelBundle | None:
        """Open the given (default: promoted) bundle fully, then swap it in.

        A partial or corrupt bundle raises and the current one stays in place.
        """
        from shelfwise.training.bundle import BundleStore

        store = BundleStore(self.settings.model_dir)
        if version is None and store.current_version() is None and missing_ok:
            return None
        with self._reload_lock:
            bundle = store.open(version)
            self.bundle = bundle
            self.bundle_error = None
        return bundle

    def close(self) -> None:
        self.db.dispose()
