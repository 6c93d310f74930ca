"""Signal quality, reconciliation and identity over HTTP (read role)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel

from shelfwise.api.auth import Principal, require
from shelfwise.api.deps import RuntimeDep
from shelfwise.contracts.quality import quality_report
from shelfwise.contracts.reconcile import reconcile
from shelfwise.values import ID_PATTERN

router = APIRouter(prefix="/v1", tags=["signals"])

Reader = Annotated[Principal, Depends(require("read"))]


class FlagOut(BaseModel):
    segment: str
    platform: str
    browser: str
    app_version: str
    metric: str
    rate: float
    rest_rate: float
    p_value: float
    q_value: float
    revenue_at_stake: float


class SegmentOut(BaseModel):
    platform: str
    browser: str
    app_version: str
    volumes: dict[str, int]
    counts: dict[str, int]
    rates: dict[str, float | None]
    schema_violations: dict[str, int]
    revenue: float


class QualityOut(BaseModel):
    totals: dict[str, int]
    segments: list[SegmentOut]
    flags: list[FlagOut]


class IdentityOut(BaseModel):
    person_id: str
    ids: list[str]


@router.get("/signals/report", response_model=QualityOut)
def signals_report(
    runtime: RuntimeDep,
    _: Reader,
    fdr: Annotated[float, Query(gt=0, le=0.5)] = 0.05,
    min_effect: Annotated[float, Query(ge=0, le=1)] = 0.05,
) -> QualityOut:
    """Per platform x browser x app version quality, with FDR-controlled flags."""
    return QualityOut.model_validate(quality_report(runtime.db, fdr, min_effect).as_dict())


@router.get("/signals/reconciliation")
def signals_reconciliation(runtime: RuntimeDep, _: Reader) -> dict[str, Any]:
    """Catalog join rate per event type and platform, misses by class."""
    return reconcile(runtime.db, runtime.catalog, runtime.aliases).as_dict()


@router.get("/identity/{any_id:path}", response_model=IdentityOut)
def identity(
    any_id: Annotated[str, Path(min_length=1, max_length=200, pattern=ID_PATTERN)],
    runtime: RuntimeDep,
    _: Reader,
) -> IdentityOut:
    """The person behind an anonymous, device or customer id (it may hold ``/``: the id
    is the rest of the path)."""
    return IdentityOut(
        person_id=runtime.identity.resolve(any_id), ids=runtime.identity.profile(any_id)
    )
