"""The running system's parts, built once from Settings and passed in (no globals).

The API and the CLI both open a Runtime; each stage adds what it needs here.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from shelfwise.access import KeyRing, KeyStore
from shelfwise.access.customers import SECRET_NAME as CUSTOMER_TOKENS_SECRET
from shelfwise.access.customers import CustomerTokens, KnownCustomers
from shelfwise.access.secrets import instance_secret
from shelfwise.bundles import BundleStore, bundle_store
from shelfwise.catalog import CatalogRepository, CatalogSnapshot
from shelfwise.config import Settings
from shelfwise.contracts.events import Event
from shelfwise.contracts.identity import IdentityGraph
from shelfwise.contracts.ingest import Ingestor
from shelfwise.contracts.privacy import Eraser
from shelfwise.contracts.reconcile import AliasTable
from shelfwise.errors import NotFound, ShelfwiseError
from shelfwise.experiments import ExperimentRepository, RunningExperiments
from shelfwise.experiments.model import Arm
from shelfwise.monitoring.coherence import CoherenceReport, served_coherence
from shelfwise.pipeline import Recommender
from shelfwise.pipeline.assembly import degraded_blend, known_sources
from shelfwise.pipeline.governed import Governor
from shelfwise.pipeline.preview import PreviewReport, preview_draft
from shelfwise.pipeline.replay import Replayer
from shelfwise.rules.live import LiveRulebook, RedisVersion
from shelfwise.rules.model import Rule
from shelfwise.rules.store import RuleStore
from shelfwise.rules.validate import validate_rulebook
from shelfwise.serving import (
    DecisionLog,
    Placements,
    ServingMetrics,
    SessionState,
    load_placements,
)
from shelfwise.serving.identity import PersonCache
from shelfwise.serving.outcomes import purchases_of
from shelfwise.serving.reload import BundleWatcher
from shelfwise.store import Database, connect, upgrade
from shelfwise.store.types import utcnow

Clock = Callable[[], datetime]
log = logging.getLogger("shelfwise.runtime")

if TYPE_CHECKING:
    from shelfwise.bundles import ModelBundle


@dataclass
class Runtime:
    settings: Settings
    db: Database
    catalog: CatalogRepository
    snapshot: CatalogSnapshot
    keyring: KeyRing
    rules: LiveRulebook
    clock: Clock = utcnow  # what "now" is for rule windows and write-time validation
    # The promoted model bundle (None until one is trained). Requests read this
    # attribute once and keep their reference, so a reload swaps it atomically.
    bundle: ModelBundle | None = None
    bundle_error: str | None = None  # why the last bundle asked for was refused
    bundle_error_code: str | None = None  # and its stable code (bundle_corrupt, ...)
    _refused: tuple[str, str] | None = field(default=None, repr=False)  # (version, code)
    _reload_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _bundle_store: BundleStore | None = field(default=None, repr=False)
    # signals: the one ingestion path, the identity graph, product-id aliases
    identity: IdentityGraph = field(init=False)
    aliases: AliasTable = field(init=False)
    ingestor: Ingestor = field(init=False)
    eraser: Eraser = field(init=False)  # privacy: erase a person across every linked id
    # experiments: specs and the running ones a worker assigns from
    experiments: ExperimentRepository = field(init=False)
    assignments: RunningExperiments = field(init=False)
    # serving: placements, live sessions, the decision log, metrics, the request path
    placements: Placements = field(init=False)
    metrics: ServingMetrics = field(init=False)
    sessions: SessionState = field(init=False)
    decisions: DecisionLog = field(init=False)
    _recommender: Recommender | None = field(default=None, init=False, repr=False)
    # storefront keys' customer tokens (access/customers.py), made on first use
    _customer_tokens: CustomerTokens | None = field(default=None, init=False, repr=False)
    known_customers: KnownCustomers = field(init=False)

    def __post_init__(self) -> None:
        self.experiments = ExperimentRepository(self.db)
        self.assignments = RunningExperiments(
            self.experiments, self.settings.experiment_refresh_seconds
        )
        self.placements = load_placements(self.settings)
        self.placements.check_sources(known_sources())
        self.metrics = ServingMetrics()
        self.sessions = SessionState.from_settings(self.settings, self.metrics.set_session_degraded)
        self.decisions = DecisionLog.from_settings(
            self.db,
            self.settings,
            self.metrics.drop_decisions,
            self.metrics.background_failure,
            self.metrics.decision_progress,
        )
        self.identity = IdentityGraph(self.db, max_ids=self.settings.identity_max_ids)
        self.aliases = AliasTable(self.db)
        self.ingestor = Ingestor(
            self.db,
            self.settings,
            known_product=self.known_product,
            observers=[self.identity, _SessionObserver(self.sessions)],
        )
        self.decisions.known_product = self.known_product
        self.known_customers = KnownCustomers(self.db)
        self.eraser = Eraser(
            self.db,
            self.identity,
            clear_session=self.sessions.clear,
            before=self.decisions.flush,
            salt=self.settings.privacy_salt,
        )

    def bulk_ingestor(self) -> Ingestor:
        """The ingestion path for a one-shot process (``events import``, data-set loads).

        Identical checks, storage and identity stitching; live session state is fed
        only when it is shared (Redis): a CLI process's in-memory sessions die with it
        and no request ever reads them."""
        if self.sessions.primary is not None:
            return self.ingestor
        return Ingestor(
            self.db, self.settings, known_product=self.known_product, observers=[self.identity]
        )

    def customer_tokens(self) -> CustomerTokens:
        """Storefront keys' customer tokens, under the installation's secret (read from
        the store, or made there, at first use)."""
        if self._customer_tokens is None:
            master = instance_secret(self.db, CUSTOMER_TOKENS_SECRET)
            self._customer_tokens = CustomerTokens(master, self.settings.customer_token_max_seconds)
        return self._customer_tokens

    def known_product(self, product_id: str) -> bool:
        """In the catalog snapshot or a known alias (call ``snapshot.refresh()`` per batch)."""
        return product_id in self.snapshot.vocab or self.aliases.target(product_id) is not None

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
            RedisVersion(settings.redis_url, settings.redis_prefix, settings.redis_retry_seconds)
            if settings.redis_url
            else None
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
        runtime = cls(
            settings=settings,
            db=db,
            catalog=catalog,
            snapshot=snapshot,
            keyring=KeyRing(settings.api_keys, KeyStore(db), enabled=settings.auth_enabled),
            rules=LiveRulebook(store, snapshot, redis_version),
            clock=clock,
        )
        if load:
            runtime.load_last_good_bundle()
        return runtime

    @property
    def bundle_store(self) -> BundleStore:
        """Where bundles are written, promoted and opened (``settings.bundle_store``):
        one per runtime, so what it learns (a refused version) lasts."""
        if self._bundle_store is None:
            self._bundle_store = bundle_store(self.settings, self.db)
        return self._bundle_store

    def load_last_good_bundle(self) -> None:
        """At start: the promoted bundle, verified against its manifest; when it fails,
        the last good one (``BundleStore.open_last_good``), or none (degraded mode).

        A refusal is loud (the log, ``/ready``, ``/v1/models``, ``/metrics``), never a
        reason not to start: a server without its model still serves slates.
        """
        with self._reload_lock:
            bundle, refused = self.bundle_store.open_last_good()
            for version, error in refused:
                self.bundle_refused(version, error)
            self.bundle = bundle
            self.metrics.bundle_loaded.set(0 if bundle is None else 1)
            self.metrics.bundle_created.set(
                0 if bundle is None else bundle.info.created_at.timestamp()
            )
            if refused:
                promoted, error = refused[0]
                instead = "none (degraded mode)" if bundle is None else bundle.version
                self.bundle_error = f"{error.message}; serving {instead}"
                self.bundle_error_code = error.code
                log.error("promoted model bundle %s refused; serving %s", promoted, instead)

    def bundle_refused(self, version: str, error: ShelfwiseError) -> None:
        """Make a refused bundle loud: logged (once per version and reason), counted in
        ``/metrics``, shown by ``/ready`` and ``/v1/models`` until a bundle loads."""
        self.bundle_error, self.bundle_error_code = error.message, error.code
        self.metrics.bundle_refused.set(1)
        if self._refused != (version, error.code):
            self._refused = (version, error.code)
            self.metrics.bundle_failures.labels(error.code).inc()
            log.error("model bundle %s refused [%s]: %s", version, error.code, error.message)

    def load_bundle(
        self, version: str | None = None, *, missing_ok: bool = False
    ) -> ModelBundle | None:
        """Open the given (default: promoted) bundle fully, then swap it in.

        Every file is checked against the manifest's checksums first: a partial or
        corrupt bundle raises (and is :meth:`bundle_refused`) and the current one
        stays in place.
        """
        from shelfwise.bundles import BundleError

        store = self.bundle_store
        version = version or store.current_version()
        if version is None and missing_ok:
            return None
        with self._reload_lock:
            try:
                bundle = store.open(version, verify=True)
            except BundleError as e:
                self.bundle_refused(version or "", e)
                raise
            self.bundle = bundle
            self.bundle_error = self.bundle_error_code = self._refused = None
            self.metrics.bundle_loaded.set(1)
            self.metrics.bundle_created.set(bundle.info.created_at.timestamp())
            self.metrics.bundle_refused.set(0)
        return bundle

    def bundle_watcher(self, interval: float) -> BundleWatcher:
        """The watch that loads each newly promoted bundle into this runtime."""
        return BundleWatcher(
            self.bundle_store,
            load=self.load_bundle,
            refused=self.bundle_refused,
            failure=self.metrics.background_failure,
            interval=interval,
        )

    @property
    def recommender(self) -> Recommender:
        """The request path, built on first use (the CLI's catalog commands never pay for it)."""
        if self._recommender is None:
            self._recommender = self.build_recommender()
        return self._recommender

    def build_recommender(self) -> Recommender:
        """A new request path over this runtime's parts (:attr:`recommender` keeps one)."""
        degraded = degraded_blend(self.db, self.snapshot)
        if self.bundle is None:
            degraded.current()  # no bundle: the first requests are degraded, made now
        try:
            self.identity.warm()  # the request path's PersonCache reads it
        except SQLAlchemyError as e:
            log.warning("identity graph unavailable (%s): people resolve as given for now", e)
        return Recommender(
            settings=self.settings,
            snapshot=self.snapshot,
            placements=self.placements,
            sessions=self.sessions,
            decisions=self.decisions,
            metrics=self.metrics,
            degraded=degraded,
            rules=Governor(self.rules.current),
            assigner=self.assignments,
            bundle_of=lambda: self.bundle,
            persons=PersonCache(
                self.identity, max_age_seconds=self.settings.identity_refresh_seconds
            ),
        )

    def replayer(self) -> Replayer:
        """Logged slates through the pipeline that served them (the served bundle and
        ranker shared with the request path; older bundles opened from the model dir)."""
        rec = self.recommender
        bundles = self.bundle_store
        return Replayer(
            self.settings,
            self.snapshot,
            self.placements,
            rec.baseline_blend,
            current=rec.bundle_view(),
            learned=rec.learned,
            open_bundle=lambda version: bundles.open(version),
            arm_of=self._arm_of,
        )

    def _arm_of(self, experiment_id: str, arm: str) -> Arm | None:
        try:
            spec = self.experiments.get(experiment_id).spec
        except NotFound:
            return None
        return next((a for a in spec.arms if a.name == arm), None)

    def preview(self, rules: Sequence[Rule], **options: Any) -> PreviewReport:
        """The rules' impact preview of a draft (``pipeline/preview.py``) over the
        decision log; ``options`` as :func:`~shelfwise.pipeline.preview.preview_draft`."""
        return preview_draft(
            rules,
            live=self.rules.current,
            replayer=self.replayer(),
            decisions=self.decisions,
            purchases=lambda rec_ids: purchases_of(self.db, rec_ids),
            clock=self.clock,
            currency=self.settings.currency,
            **options,
        )

    def coherence(self, start: datetime, end: datetime) -> CoherenceReport:
        """Coherence of the product placements' slates (those that name the viewed
        product) served in ``[start, end)``, from the decision log."""
        product_pages = [p.name for p in self.placements if p.requires_item]
        return served_coherence(self.decisions, self.snapshot, product_pages, start, end)

    def close(self) -> None:
        if self.rules.redis_version is not None:
            self.rules.redis_version.close()
        if self._recommender is not None:
            self._recommender.clock.close()
        self.decisions.close()
        self.db.dispose()


@dataclass(frozen=True)
class _SessionObserver:
    """Ingestion hook: accepted events of a session reach its live state."""

    sessions: SessionState

    def observe_in(self, conn: Connection, events: Sequence[Event]) -> None:
        self.sessions.observe(events)
