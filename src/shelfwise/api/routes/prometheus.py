"""``/metrics``: Prometheus text exposition of the money series (role ``read``)."""

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
    """Gauges per placement x category for the last full hour, and open alerts' money at risk."""
    registry: CollectorRegistry | None = getattr(request.app.state, "prometheus", None)
    if registry is None:
        registry = request.app.state.prometheus = registry_for(
            runtime.db, runtime.settings.currency
        )
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
