"""Model bundles: what is loaded, what exists, and the atomic reload."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, StringConstraints

from shelfwise.api.auth import require
from shelfwise.api.deps import RuntimeDep
from shelfwise.bundles import ModelBundle

router = APIRouter(prefix="/v1/models", tags=["models"])

# A folder name under the model directory: no "/", no leading "." (no "..").
ModelVersion = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
]


class BundleSummary(BaseModel):
    version: str
    created_at: datetime
    config_hash: str
    window_start: datetime | None
    window_end: datetime | None
    counts: dict[str, int]
    metrics: dict[str, float]


class ModelsState(BaseModel):
    loaded: BundleSummary | None
    promoted: str | None
    versions: list[str]
    # Why the last bundle asked for (the promoted one at start, by the watch or a
    # reload) was refused; None once a bundle loads.
    error: str | None = None


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: ModelVersion | None = None


class ReloadResult(BaseModel):
    loaded: BundleSummary
    previous: str | None


def _summary(bundle: ModelBundle | None) -> BundleSummary | None:
    if bundle is None:
        return None
    i = bundle.info
    return BundleSummary(
        version=i.version,
        created_at=i.created_at,
        config_hash=i.config_hash,
        window_start=i.window_start,
        window_end=i.window_end,
        counts=i.counts,
        metrics=i.metrics,
    )


@router.get("", response_model=ModelsState, dependencies=[Depends(require("read"))])
def models(runtime: RuntimeDep) -> ModelsState:
    """The bundle this worker serves, the promoted version, and every complete bundle."""
    store = runtime.bundle_store
    return ModelsState(
        loaded=_summary(runtime.bundle),
        promoted=store.current_version(),
        versions=store.versions(),
        error=runtime.bundle_error,
    )


@router.post("/reload", response_model=ReloadResult, dependencies=[Depends(require("admin"))])
def reload(runtime: RuntimeDep, body: ReloadRequest | None = None) -> ReloadResult:
    """Load the promoted bundle (or ``version``) and swap it in atomically.

    A partial or corrupt bundle is refused (409 ``bundle_incomplete`` /
    ``bundle_corrupt``) and the bundle being served stays in place.
    """
    previous = runtime.bundle.version if runtime.bundle else None
    bundle = runtime.load_bundle(body.version if body else None)
    assert bundle is not None
    summary = _summary(bundle)
    assert summary is not None
    return ReloadResult(loaded=summary, previous=previous)
