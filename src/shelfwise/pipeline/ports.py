"""The one stage interface of the pipeline, and what flows through it.

Every stage after the context (candidates, rules, rank, arrangement) is a
:class:`Stage`: it reads a :class:`Flow` and returns a new one with its own part
filled in, recording what it decided in the flow's trace. The rulebook
(``pipeline/governed.py``), the learned ranker (``pipeline/learned.py``) and the
stand-ins of ``pipeline/defaults.py`` are implementations of it, so the
:class:`~shelfwise.pipeline.flow.Pipeline` runs them all the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Literal, NamedTuple, Protocol

import numpy as np

from shelfwise.candidates.base import FloatArray, IntArray, Proposal, RecContext
from shelfwise.candidates.config import PlacementChain
from shelfwise.catalog import CatalogSnapshot
from shelfwise.experiments.assignment import Assignment
from shelfwise.pipeline.pool import BoolArray, Pool, Trace
from shelfwise.serving.placements import Placement

StageName = Literal["candidates", "safety", "rank", "arrange"]


class ShownReason(NamedTuple):
    """Why an item is shown, as the slate says it (external ids, rendered text)."""

    kind: str
    source: str
    text: str
    anchor: str | None = None
    label: str | None = None
    fallback: bool = False


@dataclass(frozen=True)
class Head:
    """A learned ranker's own answer for the items it ranked, in its order.

    ``positions`` are pool positions; per slot: the ranker's score, exploration
    draw, propensity, reasons and (explained) contributions."""

    positions: IntArray
    scores: FloatArray
    explored: BoolArray
    propensities: FloatArray
    reasons: tuple[tuple[ShownReason, ...], ...]
    contributions: Sequence[dict[str, float]]  # (made when first read)

    def slot_of(self, pool_position: int) -> int | None:
        return self._slots.get(pool_position)

    @cached_property
    def _slots(self) -> dict[int, int]:
        """Pool position -> its (first) slot: one dict for the slate's every item."""
        slots: dict[int, int] = {}
        for slot, position in enumerate(self.positions.tolist()):
            slots.setdefault(position, slot)
        return slots


@dataclass(frozen=True)
class Ranked:
    """Expected value per pool entry, with the parts it is made of (for reasons).

    ``kind`` says which ranker ordered the pool; a learned ranker leaves its
    ``head`` (and explores itself: the arrangement adds no exploration slots)."""

    value: FloatArray
    contributions: dict[str, FloatArray] = field(default_factory=dict)
    kind: Literal["blend", "learned"] = "blend"
    objective_version: str | None = None
    head: Head | None = None


@dataclass(frozen=True)
class Arranged:
    """The final order: positions into the pool, with exploration flags and propensities."""

    order: IntArray
    explored: BoolArray
    propensity: FloatArray

    @classmethod
    def plain(cls, order: IntArray) -> Arranged:
        return cls(order, np.zeros(len(order), bool), np.ones(len(order)))


@dataclass(frozen=True)
class Plan:
    """A placement as one request serves it: an experiment arm's sources and
    objective applied, with the candidate chains of the model and of degraded mode."""

    placement: Placement
    chain: PlacementChain  # with a model bundle
    degraded_chain: PlacementChain  # without one
    sources: tuple[str, ...] | None = None  # the sources a learned ranker reads (None: all)


_EMPTY_POOL = Pool.empty()
_NO_ITEMS: IntArray = np.zeros(0, np.int64)
_NO_ITEMS.flags.writeable = False


class Flow(NamedTuple):
    """One slate in the making. Each stage returns a copy with its part filled in
    (``flow._replace(...)``: a tuple, immutable and cheap to copy on the hot path)."""

    snapshot: CatalogSnapshot
    ctx: RecContext
    plan: Plan
    k: int
    seed: int  # exploration draws (the serving path derives it from the rec_id)
    trace: Trace
    seq: int = 0  # the snapshot's change sequence the slate is made as of (kept entries)
    pool: Pool = _EMPTY_POOL
    proposals: tuple[Proposal, ...] = ()
    candidates: IntArray = _NO_ITEMS  # the pool before any rule
    rules_ctx: RecContext | None = None  # ``ctx`` with the placement's rule scope
    ranked: Ranked | None = None
    arranged: Arranged | None = None
    # The candidates asked of the chain: the placement's ``max_candidates`` (0), or
    # deeper when the rules left its slate short (``Pipeline.run``).
    size: int = 0

    @property
    def pool_size(self) -> int:
        """How many candidates the chain is asked for."""
        return self.size or self.plan.placement.max_candidates


class Stage(Protocol):
    """One step of the pipeline: a pure function of the flow (and the stage's own,
    immutable parts), which traces what it decided."""

    @property
    def name(self) -> StageName: ...

    @property
    def version(self) -> str | None: ...

    def run(self, flow: Flow) -> Flow: ...


class Assigner(Protocol):
    """Experiment assignment (``shelfwise.experiments.RunningExperiments``)."""

    def assign(self, placement: str, person_id: str, now: datetime) -> Assignment | None: ...
