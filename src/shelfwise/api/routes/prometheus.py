"""``/metrics``: Prometheus text exposition (role ``read``) of the serving metrics
(every worker's, in multiprocess mode) followed by the money series."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from shelfwise.api.auth import require
from shelfwise.api.deps import RuntimeDep
from shelfwise.monitoring.prom import registry_for

router = APIRouter(tags=["monitoring"])


@router.get(
    "/metrics",
    response_class=Response,
    dependencies=[Depends(require("read"))],
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def metrics(request: Request, runtime: RuntimeDep) -> Response:
    """Latency by placement, slates, fallback share, rule drops, snapshot and bundle ages,
    whether a verified bundle is loaded and bundles refused; gauges per placement x
    category for the last full hour; open alerts' money at risk."""
    serving = runtime.metrics
    serving.snapshot_age.set(runtime.snapshot.age_seconds)
    serving.bundle_age.set(runtime.recommender.bundle_age_seconds())
    serving.bundle_loaded.set(0 if runtime.bundle is None else 1)
    serving.bundle_refused.set(0 if runtime.bundle_error_code is None else 1)
    serving_text, _ = serving.exposition()
    registry: CollectorRegistry | None = getattr(request.app.state, "prometheus", None)
    if registry is None:
        registry = request.app.state.prometheus = registry_for(
            runtime.db, runtime.settings.currency, runtime.settings.attribution_window_hours
        )
    return Response(serving_text + generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
