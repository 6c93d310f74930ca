"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from shelfwise import __version__
from shelfwise.api.deps import RuntimeDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    version: str


class Ready(BaseModel):
    status: str
    database: str
    catalog_products: int
    catalog_age_seconds: float
    model_version: str | None = Field(description="The model bundle this worker serves.")
    degraded: bool = Field(
        description="Slates come without the promoted model: none was loaded (fresh "
        "install), or it failed verification and the last good bundle (or none) serves."
    )
    degraded_reason: str | None = Field(
        description="`no_bundle`, or why the promoted bundle was refused: `bundle_incomplete`, "
        "`bundle_corrupt`, `bundle_invalid`, `model_not_found` (the message: GET /v1/models)."
    )


@router.get("/health", response_model=Health)
async def health() -> Health:
    """The process is up."""
    return Health(status="ok", version=__version__)


@router.get("/ready", response_model=Ready)
def ready(runtime: RuntimeDep) -> Ready:
    """The store answers and the catalog snapshot is loaded (503 otherwise).

    A worker without its promoted model is still ready (it serves degraded slates),
    with ``degraded`` and the reason.
    """
    runtime.db.ping()
    runtime.snapshot.refresh()
    bundle, code = runtime.bundle, runtime.bundle_error_code
    return Ready(
        status="ready",
        database=runtime.db.backend,
        catalog_products=len(runtime.snapshot),
        catalog_age_seconds=round(runtime.snapshot.age_seconds, 3),
        model_version=None if bundle is None else bundle.version,
        degraded=bundle is None or code is not None,
        degraded_reason=code or ("no_bundle" if bundle is None else None),
    )
