"""The stages other packages own, as the pipeline sees them.

The rulebook (``shelfwise.rules``), the learned ranker (``shelfwise.ranking``)
and experiment assignment (``shelfwise.experiments``) plug in here; until one
is configured, :mod:`shelfwise.pipeline.defaults` stands in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import numpy as np

from shelfwise.candidates.base import FloatArray, IntArray, RecContext
from shelfwise.catalog import CatalogSnapshot
from shelfwise.experiments.assignment import Assignment
from shelfwise.pipeline.pool import BoolArray, Pool, Trace
from shelfwise.serving.placements import Placement


@dataclass(frozen=True)
class Ranked:
    """Expected value per pool entry, with the parts it is made of (for reasons)."""

    value: FloatArray
    contributions: dict[str, FloatArray] = field(default_factory=dict)


@dataclass(frozen=True)
class Arranged:
    """The final order: positions into the pool, with exploration flags and propensities."""

    order: IntArray
    explored: BoolArray
    propensity: FloatArray

    @classmethod
    def plain(cls, order: IntArray) -> Arranged:
        return cls(order, np.zeros(len(order), bool), np.ones(len(order)))


class SafetyStage(Protocol):
    """Removes what must never be shown, before ranking. Traces what it removed."""

    version: str | None

    def apply(
        self,
        ctx: RecContext,
        placement: Placement,
        pool: Pool,
        snapshot: CatalogSnapshot,
        trace: Trace,
    ) -> Pool: ...


class RankStage(Protocol):
    version: str | None

    def rank(
        self, ctx: RecContext, placement: Placement, pool: Pool, snapshot: CatalogSnapshot
    ) -> Ranked: ...


class ArrangeStage(Protocol):
    """Pins, variant de-duplication, caps and exploration slots, after ranking."""

    def arrange(
        self,
        ctx: RecContext,
        placement: Placement,
        pool: Pool,
        ranked: Ranked,
        k: int,
        snapshot: CatalogSnapshot,
        trace: Trace,
        seed: int,
    ) -> Arranged: ...


class Assigner(Protocol):
    """Experiment assignment (``shelfwise.experiments.RunningExperiments``)."""

    def assign(self, placement: str, person_id: str, now: datetime) -> Assignment | None: ...
