"""Placements: where a slate is shown and how it is built, configured in one file.

The package ships ``placements.yaml``; ``settings.placements_file`` replaces it.
Every placement names its candidate sources, its fallback chain, the rule
scope, the objective blend and its default k. The file is validated at start:
an unknown key, a duplicate name or a source no one provides is a
:class:`~shelfwise.errors.ConfigError` naming the placement and the source.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterator
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shelfwise.config import Settings
from shelfwise.errors import ConfigError, NotFound

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_\-]+$")]
Page = Literal["home", "product", "cart", "category", "search", "email", "other"]


class Objective(BaseModel):
    """Weights of the expected-value blend handed to the ranker (normalised to sum 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    engagement: float = Field(default=1.0, ge=0)
    revenue: float = Field(default=0.0, ge=0)
    margin: float = Field(default=0.0, ge=0)
    money_cap: float = Field(
        default=0.5, ge=0, le=5, description="money adds at most this share of the engagement value"
    )
    popularity_penalty: float = Field(
        default=0.0, ge=0, le=4, description="value x (1 + 28-day events / mean) ** -penalty"
    )
    chain_weight: float = Field(
        default=0.0, ge=0, le=8, description="value x (chain score / best) ** weight"
    )
    exposure_cap: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="the largest share of the placement's slates one item may take, over "
        "every in-stock viewed product (a placement that requires_item) or over the known "
        "people (any other but a cart's); calibrated when the bundle is trained with its "
        "ranker (ranking.exposure), applied by the learned ranker (None: no cap)",
    )

    @model_validator(mode="after")
    def _positive(self) -> Objective:
        if self.engagement + self.revenue + self.margin <= 0:
            raise ValueError("objective weights must not all be zero")
        return self

    def normalised(self) -> tuple[float, float, float]:
        total = self.engagement + self.revenue + self.margin
        return (self.engagement / total, self.revenue / total, self.margin / total)


RankerTask = Literal["requests", "bought_with", "cart", "new_items"]


class Placement(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    page: Page
    description: str = ""
    sources: dict[Name, Annotated[float, Field(gt=0)]] = Field(min_length=1)
    fallback: tuple[Name, ...] = ()
    depth: int = Field(default=200, ge=1, le=5000)
    rule_scope: Name
    objective: Objective = Objective()
    k: int = Field(default=10, ge=1, le=1000)
    max_candidates: int = Field(default=200, ge=1, le=10_000)
    exploration: float = Field(default=0.0, ge=0.0, le=0.5)
    requires_item: bool = False
    uses_cart: bool = False
    batch: bool = False
    # A new-items shelf ("new for you"): the person's own history (every item they
    # viewed, carted or bought) is left out of the slate.
    new_items_only: bool = False
    # Which of the bundle's learned rankers orders this placement: "requests" (the
    # home task, ``ranker/``), "bought_with" (product-page requests labelled by what
    # was bought after the viewed product, ``ranker_bought_with/``) or "cart" (orders
    # with one item hidden, ``ranker_cart/``) or "new_items" (the home requests with the
    # person's history left out as well as as they are, ``ranker_new_items/``: for a
    # ``new_items_only`` shelf); a bundle without that task's ranker
    # serves the placement with its "requests" ranker.
    ranker: RankerTask = "requests"

    @model_validator(mode="after")
    def _capped_anchors(self) -> Placement:
        # the cap is calibrated over viewed products or over people; a cart's slates
        # are over carts, which the calibration has no sample of
        if self.objective.exposure_cap is not None and self.uses_cart and not self.requires_item:
            raise ValueError(
                f"placement {self.name!r}: exposure_cap is calibrated over viewed products "
                "(requires_item) or people, not over carts (uses_cart): remove it"
            )
        return self

    def source_names(self) -> list[str]:
        return list(dict.fromkeys([*self.sources, *self.fallback]))


class PlacementsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1] = 1
    placements: tuple[Placement, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> PlacementsFile:
        names = [p.name for p in self.placements]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate placement name(s): {', '.join(dupes)}")
        return self


class Placements:
    """The validated placements, by name, with a version hash stamped on slates."""

    def __init__(self, config: PlacementsFile, origin: str) -> None:
        self.config = config
        self.origin = origin
        self._by_name = {p.name: p for p in config.placements}
        payload = json.dumps(config.model_dump(mode="json"), sort_keys=True)
        self.version = hashlib.sha256(payload.encode()).hexdigest()[:12]

    def __iter__(self) -> Iterator[Placement]:
        return iter(self.config.placements)

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def get(self, name: str) -> Placement:
        placement = self._by_name.get(name)
        if placement is None:
            raise NotFound(
                f"unknown placement {name!r}; known: {', '.join(sorted(self._by_name))}",
                code="placement_not_found",
            )
        return placement

    def check_sources(self, known: Collection[str]) -> None:
        """Fail at start when a placement names a source no one provides."""
        problems = [
            f"placement {p.name!r} names unknown source {s!r}"
            for p in self
            for s in p.source_names()
            if s not in known
        ]
        if problems:
            raise ConfigError(
                f"{'; '.join(problems)} (known sources: {', '.join(sorted(known))}) in {self.origin}",
                code="placement_unknown_source",
                details={"problems": problems},
            )


def parse_placements(text: str, origin: str) -> Placements:
    try:
        data = yaml.safe_load(text)
        return Placements(PlacementsFile.model_validate(data), origin)
    except yaml.YAMLError as e:
        raise ConfigError(f"{origin} is not valid YAML: {e}", code="placements_invalid") from e
    except ValidationError as e:
        raise ConfigError(
            f"{origin} is not a valid placements file: {e}", code="placements_invalid"
        ) from e


def load_placements(settings: Settings) -> Placements:
    """The placements file of ``settings`` (must exist when given) or the shipped one."""
    path: Path | None = settings.placements_file
    if path is None:
        return shipped_placements()
    if not path.is_file():
        raise ConfigError(f"placements file {path} does not exist", code="config_file_missing")
    return parse_placements(path.read_text(), str(path))


def shipped_placements() -> Placements:
    """The placements shipped with shelfwise (``shelfwise/serving/placements.yaml``)."""
    text = resources.files("shelfwise.serving").joinpath("placements.yaml").read_text()
    return parse_placements(text, "the shipped placements.yaml")
