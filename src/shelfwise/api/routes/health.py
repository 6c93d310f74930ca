"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

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


@router.get("/health", response_model=Health)
async def health() -> Health:
    """The process is up."""
    return Health(status="ok", version=__version__)


@router.get("/ready", response_model=Ready)
def ready(runtime: RuntimeDep) -> Ready:
    """The store answers and the catalog snapshot is loaded (503 otherwise)."""
    runtime.db.ping()
    runtime.snapshot.refresh()
    return Ready(
        status="ready",
        database=runtime.db.backend,
        catalog_products=len(runtime.snapshot),
        catalog_age_seconds=round(runtime.snapshot.age_seconds, 3),
    )
