"""Catalog endpoints: batch upsert, hot stock/price patches, reads, completeness."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from shelfwise.api.auth import Principal, require
from shelfwise.api.deps import RuntimeDep
from shelfwise.catalog import (
    CompletenessReport,
    ProductPatch,
    ProductPatchItem,
    StoredProduct,
    completeness,
    validate_records,
)
from shelfwise.errors import PayloadTooLarge
from shelfwise.values import PATH_ID_PATTERN

router = APIRouter(prefix="/v1", tags=["catalog"])

Merchandiser = Annotated[Principal, Depends(require("merchandiser"))]
Reader = Annotated[Principal, Depends(require("read"))]
ProductIdPath = Annotated[str, Path(min_length=1, max_length=128, pattern=PATH_ID_PATTERN)]


class ProductBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    products: list[dict[str, Any]] = Field(min_length=1)


class RowErrorOut(BaseModel):
    field: str
    code: str
    message: str


class RejectedOut(BaseModel):
    row: int
    product_id: str | None
    errors: list[RowErrorOut]


class UpsertOut(BaseModel):
    received: int
    inserted: int
    updated: int
    unchanged: int
    rejected: list[RejectedOut]


class PatchBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    changes: list[ProductPatchItem] = Field(min_length=1)


class ProductPage(BaseModel):
    total: int
    offset: int
    items: list[StoredProduct]


@router.put("/products", response_model=UpsertOut)
def upsert_products(batch: ProductBatch, runtime: RuntimeDep, _: Merchandiser) -> UpsertOut:
    """Batch upsert. Each invalid row is reported with its reasons; valid rows are stored."""
    if len(batch.products) > runtime.settings.max_batch_size:
        raise PayloadTooLarge(
            f"batch of {len(batch.products)} exceeds {runtime.settings.max_batch_size}",
            code="batch_too_large",
        )
    feed = validate_records(enumerate(batch.products))
    result = runtime.catalog.upsert(feed.products, source="api")
    runtime.snapshot.refresh(force=True)
    return UpsertOut(
        received=feed.received,
        **result.as_dict(),
        rejected=[RejectedOut.model_validate(r.as_dict()) for r in feed.rejected],
    )


@router.get("/products", response_model=ProductPage)
def list_products(
    runtime: RuntimeDep,
    _: Reader,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ProductPage:
    return ProductPage(
        total=runtime.catalog.count(), offset=offset, items=runtime.catalog.page(offset, limit)
    )


@router.get("/products/{product_id}", response_model=StoredProduct)
def get_product(product_id: ProductIdPath, runtime: RuntimeDep, _: Reader) -> StoredProduct:
    return runtime.catalog.get(product_id)


@router.get("/products/{product_id}/history")
def product_history(
    product_id: ProductIdPath, runtime: RuntimeDep, _: Reader
) -> list[dict[str, Any]]:
    runtime.catalog.get(product_id)
    return runtime.catalog.history(product_id)


@router.patch("/products/{product_id}", response_model=StoredProduct)
def patch_product(
    product_id: ProductIdPath, change: ProductPatch, runtime: RuntimeDep, _: Merchandiser
) -> StoredProduct:
    """Hot update of stock and/or price; visible to the next recommendation request."""
    product = runtime.catalog.patch(product_id, change)
    runtime.snapshot.refresh(force=True)
    return product


@router.patch("/products", response_model=list[StoredProduct])
def patch_products(batch: PatchBatch, runtime: RuntimeDep, _: Merchandiser) -> list[StoredProduct]:
    """Batch hot update; an unknown id rejects the whole batch (404) so nothing half-applies."""
    if len(batch.changes) > runtime.settings.max_batch_size:
        raise PayloadTooLarge("too many changes in one batch", code="batch_too_large")
    changes = [
        (
            c.product_id,
            ProductPatch.model_validate(c.model_dump(exclude={"product_id"}, exclude_unset=True)),
        )
        for c in batch.changes
    ]
    out = runtime.catalog.patch_many(changes)
    runtime.snapshot.refresh(force=True)
    return out


@router.get("/catalog/report", response_model=CompletenessReport)
def catalog_report(
    runtime: RuntimeDep, _: Reader, depth: Annotated[int, Query(ge=1, le=6)] = 1
) -> CompletenessReport:
    """Share of products missing each commercial attribute, overall and per category."""
    return completeness(runtime.catalog.iter_all(), depth=depth)
