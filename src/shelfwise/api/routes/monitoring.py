"""Monitoring: business metrics, drift and cost-weighted alerts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from shelfwise.api.auth import require
from shelfwise.api.deps import RuntimeDep
from shelfwise.errors import InvalidInput
from shelfwise.monitoring.alerts import Alert, AlertStore, evaluate_alerts
from shelfwise.monitoring.metrics import compute_metrics
from shelfwise.monitoring.query import DIMENSIONS
from shelfwise.monitoring.served import drift_report
from shelfwise.monitoring.timerange import resolve
from shelfwise.values import Timestamp

router = APIRouter(prefix="/v1", tags=["monitoring"])

Reader = Depends(require("read"))


class MetricsOut(BaseModel):
    start: datetime
    end: datetime
    by: list[str]
    grain: str
    currency: str
    rows: list[dict[str, Any]]
    total: dict[str, Any]
    sessions: list[dict[str, Any]]
    repeat_purchase_rate: float | None
    serving: list[dict[str, Any]]
    attribution_window_hours: float
    attribution: str
    note: str


class DriftOut(BaseModel):
    reference_start: datetime
    reference_end: datetime
    current_start: datetime
    current_end: datetime
    drifted: list[str]
    results: list[dict[str, Any]]
    exposure_reference: dict[str, Any]
    exposure_current: dict[str, Any]


class CoherenceOut(BaseModel):
    start: datetime
    end: datetime
    placements: list[str]
    rows: list[dict[str, Any]]
    limit: int
    truncated: list[str]


class AlertList(BaseModel):
    alerts: list[Alert]


class EvaluationOut(BaseModel):
    evaluated_at: datetime
    series: int
    opened: list[Alert]
    updated: list[Alert]
    resolved: list[Alert]
    notified: int


@router.get("/monitoring/metrics", response_model=MetricsOut, dependencies=[Reader])
def metrics(
    runtime: RuntimeDep,
    by: Annotated[
        str, Query(description="Comma-separated: " + ", ".join(DIMENSIONS))
    ] = "placement",
    grain: Literal["hour", "day"] = "day",
    range: Annotated[str | None, Query(description="24h, 7d, 14d or 30d")] = None,
    start: Annotated[Timestamp | None, Query()] = None,
    end: Annotated[Timestamp | None, Query()] = None,
    category_depth: Annotated[int, Query(ge=1, le=6)] = 1,
) -> MetricsOut:
    """Impressions, CTR, add-to-cart rate, orders and revenue from recommendations (the
    definition and its window in ``attribution``), AOV, out-of-stock share; ``sessions``:
    the descriptive revenue of sessions that interacted with recommendations or not."""
    dims = tuple(d.strip() for d in by.split(",") if d.strip())
    unknown = sorted(set(dims) - set(DIMENSIONS))
    if unknown:
        raise InvalidInput(f"unknown dimension(s) {', '.join(unknown)}", code="invalid_dimension")
    lo, hi = resolve(range, start, end)
    rep = compute_metrics(
        runtime.db,
        lo,
        hi,
        dims,
        grain,
        category_depth,
        decisions=runtime.decisions,
        window_hours=runtime.settings.attribution_window_hours,
    )
    return MetricsOut(
        start=rep.start,
        end=rep.end,
        by=list(rep.by),
        grain=rep.grain,
        currency=runtime.settings.currency,
        rows=[r.as_dict() for r in rep.rows],
        total=rep.total.as_dict(),
        sessions=[s.as_dict() for s in rep.sessions],
        repeat_purchase_rate=rep.repeat_purchase_rate,
        serving=[s.__dict__ for s in rep.serving],
        attribution_window_hours=rep.attribution_window_hours,
        attribution=rep.attribution,
        note=rep.note,
    )


@router.get("/monitoring/drift", response_model=DriftOut, dependencies=[Reader])
def drift(
    runtime: RuntimeDep,
    range: Annotated[str | None, Query(description="The current window: 24h, 7d, …")] = "24h",
    reference_days: Annotated[int, Query(ge=1, le=90)] = 14,
) -> DriftOut:
    """The current window against the ``reference_days`` before it."""
    lo, hi = resolve(range)
    ref = (lo - timedelta(days=reference_days), lo)
    rep = drift_report(runtime.db, ref, (lo, hi), len(runtime.snapshot), runtime.decisions)
    return DriftOut(
        reference_start=ref[0],
        reference_end=ref[1],
        current_start=lo,
        current_end=hi,
        drifted=rep.drifted,
        results=[r.as_dict() for r in rep.results],
        exposure_reference=rep.exposure_reference.__dict__,
        exposure_current=rep.exposure_current.__dict__,
    )


@router.get("/monitoring/coherence", response_model=CoherenceOut, dependencies=[Reader])
def coherence(
    runtime: RuntimeDep,
    range: Annotated[str | None, Query(description="24h, 7d, 14d or 30d")] = None,
    start: Annotated[Timestamp | None, Query()] = None,
    end: Annotated[Timestamp | None, Query()] = None,
    placement: Annotated[str | None, Query(description="One product placement")] = None,
    by_category: Annotated[
        bool, Query(description="Also a row per category of the viewed product")
    ] = True,
) -> CoherenceOut:
    """Would a merchant keep what the product placements show? From the decision log's
    slates that name the viewed product: per placement (``category`` null) and per
    category of the viewed product, the share of items in the viewed product's
    category, the median price ratio to it, the largest share of slates one item takes,
    catalog coverage, and personal reasons on slates asked without a person."""
    if placement is not None:
        runtime.placements.get(placement)  # an unknown name is a 404 with its code
    lo, hi = resolve(range, start, end)
    rep = runtime.coherence(lo, hi)
    rows = rep.rows_of(placement, by_category)
    return CoherenceOut(
        start=rep.start,
        end=rep.end,
        placements=list(rep.placements),
        rows=[r.as_dict() for r in rows],
        limit=rep.limit,
        truncated=list(rep.truncated),
    )


@router.get("/alerts", response_model=AlertList, dependencies=[Reader])
def list_alerts(
    runtime: RuntimeDep,
    status: Literal["open", "resolved"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AlertList:
    """Stored alerts, newest first: series, money per hour at risk, since when, severity."""
    return AlertList(alerts=AlertStore(runtime.db).list(status=status, limit=limit))


@router.post(
    "/alerts/evaluate", response_model=EvaluationOut, dependencies=[Depends(require("admin"))]
)
def evaluate(runtime: RuntimeDep) -> EvaluationOut:
    """Run the detector now; opens, updates and resolves alerts and notifies the webhook."""
    ev = evaluate_alerts(runtime.db, runtime.settings)
    return EvaluationOut(**ev.__dict__)
