"""The FastAPI application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from shelfwise import __version__
from shelfwise.access import KeyRing
from shelfwise.api import customers, docs, errordocs, errors, openapi
from shelfwise.api.hotpath import ShelfwiseAPI
from shelfwise.api.middleware import (
    BodyLimitMiddleware,
    HttpMetricsMiddleware,
    RequestIdMiddleware,
)
from shelfwise.api.routes import (
    catalog,
    events,
    experiments,
    health,
    keys,
    models,
    monitoring,
    people,
    prometheus,
    recommendations,
    rules,
    signals,
    storefront,
    trackers,
)
from shelfwise.api.storefront import KeyedCors, StorefrontGate
from shelfwise.config import Settings
from shelfwise.dashboard import routes as dashboard
from shelfwise.monitoring.schedule import AlertScheduler
from shelfwise.runtime import Runtime


def _publish(document: dict[str, Any], settings: Settings) -> None:
    """What the routes that read their input by hand publish, bounded by the settings,
    then each operation's security and error answers."""
    recommendations.publish(document, settings.max_k)
    events.publish(document, settings.max_batch_size)
    trackers.publish(document, settings.max_batch_size)
    customers.publish(document)
    errordocs.describe(document, ROUTERS)


# Matched in this order: the hot paths (health checks, recommendations) first.
ROUTERS = (
    health.router,
    recommendations.router,
    catalog.router,
    keys.router,
    experiments.router,
    monitoring.router,
    prometheus.router,
    dashboard.router,
    rules.router,
    trackers.router,
    events.router,
    signals.router,
    people.router,
    models.router,
    storefront.router,
)


def create_app(
    settings: Settings, runtime: Runtime | None = None, *, demo_store_key: str | None = None
) -> FastAPI:
    """Build the app. A given ``runtime`` is used as is (tests); otherwise one is
    opened at start-up (migrating the store) and closed at shutdown. With
    ``demo_store_key`` (a storefront key), the demo storefront's pages are served too."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = runtime is None
        app.state.runtime = runtime or Runtime.open(settings)
        _ = app.state.runtime.recommender  # build the request path before the first request
        app.state.runtime.decisions.start()  # its progress on /metrics moves from the start
        if owned:
            # What start-up loaded (the catalog snapshot and the rest: ~280,000 tracked
            # objects at 50,000 products) lives as long as the worker. Frozen, the
            # collector stops scanning it whenever the requests' short-lived objects
            # (decision rows queued for the writer) trigger a full collection: that
            # scanning was ~0.07 ms of CPU per served slate (benchmarks/README.md).
            gc.collect()
            gc.freeze()
        every = settings.alert_evaluate_every_seconds
        on_failure = app.state.runtime.metrics.background_failure
        scheduler = (
            AlertScheduler(app.state.runtime.db, settings, every, on_failure=on_failure)
            if every
            else None
        )
        app.state.alert_scheduler = scheduler
        if scheduler is not None:
            scheduler.start()
        watcher = None
        if settings.model_watch_seconds > 0:
            watcher = app.state.runtime.bundle_watcher(settings.model_watch_seconds)
            watcher.start()
        try:
            yield
        finally:
            if watcher is not None:
                watcher.stop()
            if scheduler is not None:
                scheduler.stop()
            app.state.gate.close()
            if owned:
                app.state.runtime.close()

    app = ShelfwiseAPI(
        title="shelfwise",
        version=__version__,
        description="Governed, explained product recommendations for online stores.",
        lifespan=lifespan,
        docs_url=None,  # served from the package by api/docs.py, not from a CDN
        redoc_url=None,
        responses={
            400: {"model": errors.ErrorResponse},
            401: {"model": errors.ErrorResponse},
            403: {"model": errors.ErrorResponse},
            404: {"model": errors.ErrorResponse},
            409: {"model": errors.ErrorResponse},
            413: {"model": errors.ErrorResponse},
            422: {"model": errors.ErrorResponse},
            503: {"model": errors.ErrorResponse},
        },
    )
    app.state.settings = settings
    if runtime is not None:
        app.state.runtime = runtime
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    if demo_store_key is not None:
        app.include_router(storefront.demo_router(demo_store_key))
    openapi.install(app, lambda document: _publish(document, settings))
    docs.install(app)
    app.state.gate = StorefrontGate.from_settings(settings)
    configured = frozenset(settings.cors_origins)

    union: list[frozenset[str]] = [frozenset(), configured]  # (the keys' origins, union)

    def origins() -> frozenset[str]:
        """``cors_origins`` and every origin a usable storefront key names."""
        keyring: KeyRing = app.state.runtime.keyring
        keyed = keyring.origins()
        if keyed is not union[0]:
            union[:] = [keyed, configured | keyed]
        return union[1]

    app.add_middleware(KeyedCors, origins=origins)
    # The storefront's GET /v1/recommendations skips FastAPI's per-request
    # machinery (api/hotpath.py), but not CORS.
    app.with_cors(origins)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(HttpMetricsMiddleware)
    app.add_middleware(RequestIdMiddleware)
    return app
