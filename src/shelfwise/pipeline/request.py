"""The request and the slate: the contracts of ``/v1/recommendations`` and the email batch."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from shelfwise.values import Id, PathId, not_bool


class RecommendRequest(BaseModel):
    """What a storefront asks for. ``item`` is the viewed product (product pages)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    placement: Annotated[PathId, Field(max_length=64)]
    person: Id | None = None
    session: Id | None = None
    item: tuple[PathId, ...] = Field(default=(), max_length=20)
    cart: tuple[PathId, ...] = Field(default=(), max_length=200)
    # Unbounded here: the API refuses k over the setting max_k (api.hotpath.within_max_k).
    k: Annotated[int, BeforeValidator(not_bool)] | None = Field(default=None, ge=1)
    explain: bool = False


class ReasonOut(BaseModel):
    kind: str
    source: str
    text: str
    anchor: str | None = None
    label: str | None = None
    fallback: bool = False


class SlateItem(BaseModel):
    product_id: str
    position: int
    title: str
    price: float | None
    currency: str | None
    availability: str | None
    image_url: str | None
    brand: str | None
    category: str | None
    score: float
    reasons: list[ReasonOut]
    explored: bool = False
    propensity: float | None = None
    contributions: dict[str, float] | None = None  # with explain=true


class ExperimentOut(BaseModel):
    experiment_id: str
    arm: str


class SlateOut(BaseModel):
    """A served slate. ``mode`` is ``degraded`` when no model bundle is loaded;
    ``ranker`` says what ordered it: ``learned`` (the bundle's ranker) or ``blend``."""

    rec_id: str
    placement: str
    mode: Literal["model", "degraded"]
    ranker: Literal["learned", "blend"] = "blend"
    objective_version: str | None = None
    items: list[SlateItem]
    model_version: str | None
    rulebook_version: str | None
    placements_version: str
    experiment: ExperimentOut | None = None
    trace: dict[str, Any] | None = None
