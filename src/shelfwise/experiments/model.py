"""Experiments as data: arms, traffic, window, metrics, guardrails, costs.

An :class:`ExperimentSpec` is what a merchandiser writes; an :class:`Experiment`
is the stored spec with its version and status. Both are closed pydantic models
(``extra="forbid"``) so a typo in a spec file is an error, not a silent default.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from shelfwise.values import Float, Id, Int, Text, Timestamp

Slug = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_\-]*$")
]
PlacementOrAll = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[a-z0-9_\-]+$")
]
ALL_PLACEMENTS = "all"

# Per-person metrics a readout can test; see docs/experiments.md for each definition.
MetricName = Literal[
    "revenue_per_person",
    "purchases_per_person",
    "conversion",
    "aov",
    "ctr",
    "add_to_cart_rate",
    "repeat_purchase_rate",
    "return_rate",
]
# Metrics where a higher value is worse (a guardrail on them fails when they rise).
LOWER_IS_BETTER: frozenset[str] = frozenset({"return_rate"})
# Metrics that are proportions: a sample plan can start from their baseline rate.
PROPORTIONS: frozenset[str] = frozenset(
    {"conversion", "ctr", "add_to_cart_rate", "repeat_purchase_rate", "return_rate"}
)
SegmentName = Literal["platform", "known_customer"]
Status = Literal["running", "stopped"]


class Arm(BaseModel):
    """One arm: a share of the experiment's traffic and a configuration override.

    ``holdout`` arms get no recommendation module (or the plain baseline); they
    carry no overrides. ``None`` in an override field means "as configured".
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Slug
    share: Float = Field(gt=0.0, le=1.0)
    holdout: bool = False
    sources: tuple[Id, ...] | None = Field(default=None, max_length=20)
    ranker: bool | None = None
    objective: dict[Id, Float] | None = Field(
        default=None, description="Objective blend weights, e.g. {engagement: 0.7, revenue: 0.3}."
    )
    rule_set: Id | None = None

    @model_validator(mode="after")
    def _holdout_has_no_overrides(self) -> Arm:
        overrides = (self.sources, self.ranker, self.objective, self.rule_set)
        if self.holdout and any(o is not None for o in overrides):
            raise ValueError(f"holdout arm {self.name!r} cannot carry configuration overrides")
        return self


class Guardrail(BaseModel):
    """A metric that must not get worse by more than ``margin`` (relative, e.g. 0.02 = 2%)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: MetricName
    margin: Float = Field(gt=0.0, lt=1.0)


class ExperimentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    experiment_id: Slug
    name: Text = Field(min_length=1, max_length=200)
    description: Text = Field(default="", max_length=4000)
    placement: PlacementOrAll = ALL_PLACEMENTS
    arms: tuple[Arm, ...] = Field(min_length=2, max_length=20)
    control: Slug | None = Field(
        default=None, description="The baseline arm lifts are measured against; default: first."
    )
    traffic: Float = Field(default=1.0, gt=0.0, le=1.0, description="Share of the layer.")
    layer_offset: Float = Field(default=0.0, ge=0.0, lt=1.0)
    salt: Text | None = Field(default=None, min_length=1, max_length=128)
    start: Timestamp
    end: Timestamp | None = None
    primary_metric: MetricName = "revenue_per_person"
    guardrails: tuple[Guardrail, ...] = ()
    segments: tuple[SegmentName, ...] = ()
    operating_cost_per_day: dict[Id, Annotated[Float, Field(ge=0.0, lt=1e12)]] = Field(
        default_factory=dict, description="Placement → running cost per day, in store currency."
    )
    global_holdout: bool = False
    population: Literal["exposed", "active"] = "exposed"
    attribution_window_hours: Float | None = Field(
        default=None, gt=0.0, le=24.0 * 90,
        description="Orders without a rec_id count as revenue from recommendations this many"
        " hours after a click on the product in the experiment's slates; None = the store's"
        " setting attribution_window_hours (the overview's and monitoring's window).",
    )  # fmt: skip
    pre_period_days: Int = Field(default=28, ge=0, le=365)
    alpha: Float = Field(default=0.05, gt=0.0, lt=0.5)
    target_mde: Float = Field(
        default=0.05, gt=0.0, description="Relative effect the test must be able to detect."
    )
    power: Float = Field(
        default=0.8, gt=0.0, lt=1.0, description="Chance of detecting target_mde (sample plan)."
    )
    baseline_rate: Float | None = Field(
        default=None, gt=0.0, lt=1.0,
        description="Expected control rate of the primary metric (a proportion, e.g. conversion"
        " 0.03): with target_mde, alpha and power it sets the minimum persons per arm.",
    )  # fmt: skip
    min_persons_per_arm: Int | None = Field(
        default=None, ge=2, le=100_000_000,
        description="Minimum persons per arm before the readout is 'ready'; overrides the"
        " minimum derived from baseline_rate (default without either: 100).",
    )  # fmt: skip

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentSpec:
        names = [a.name for a in self.arms]
        if len(set(names)) != len(names):
            raise ValueError("arm names must be unique")
        if abs(sum(a.share for a in self.arms) - 1.0) > 1e-6:
            raise ValueError("arm shares must sum to 1")
        if self.control is not None and self.control not in names:
            raise ValueError(f"control {self.control!r} is not an arm")
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        if self.baseline_rate is not None and self.primary_metric not in PROPORTIONS:
            raise ValueError(
                f"baseline_rate needs a proportion as primary_metric, not {self.primary_metric!r}"
                " (set min_persons_per_arm instead)"
            )
        if self.layer_offset + self.traffic > 1.0 + 1e-9:
            raise ValueError("layer_offset + traffic must not exceed 1")
        if self.global_holdout:
            if self.placement != ALL_PLACEMENTS:
                raise ValueError("a global holdout covers placement 'all'")
            if not any(a.holdout for a in self.arms):
                raise ValueError("a global holdout needs a holdout arm")
        return self

    @property
    def control_arm(self) -> str:
        return self.control or self.arms[0].name

    @property
    def hash_salt(self) -> str:
        return self.salt or self.experiment_id

    def arm(self, name: str) -> Arm | None:
        return next((a for a in self.arms if a.name == name), None)

    def fingerprint(self) -> str:
        """A short hash of the spec, stamped on readouts."""
        raw = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(raw.encode()).hexdigest()[:12]


class Experiment(BaseModel):
    """A stored experiment: the spec, its version (the ETag) and its status."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    spec: ExperimentSpec
    version: int = Field(ge=1)
    status: Status
    created_at: datetime
    updated_at: datetime

    @property
    def experiment_id(self) -> str:
        return self.spec.experiment_id

    def active_at(self, now: datetime) -> bool:
        s = self.spec
        return self.status == "running" and s.start <= now and (s.end is None or now < s.end)
