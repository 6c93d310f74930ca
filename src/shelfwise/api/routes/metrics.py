"""Prometheus exposition of the serving metrics (every worker's, in multiprocess mode)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from shelfwise.api.deps import RuntimeDep

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response)
def metrics(runtime: RuntimeDep) -> Response:
    """Latency by placement, slates, fallback share, rule drops, snapshot and bundle ages."""
    m = runtime.metrics
    m.snapshot_age.set(runtime.snapshot.age_seconds)
    m.bundle_age.set(runtime.recommender.bundle_age_seconds())
    body, content_type = m.exposition()
    return Response(body, media_type=content_type)
