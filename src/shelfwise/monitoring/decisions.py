"""What monitoring needs from the decision log of served slates.

The serving area records every served slate; this reader interface is the
only thing monitoring depends on. Until a real log is attached to the Runtime
the empty reader answers "no data", and the metrics that need it (fallback
share, catalog join rate, score distribution, source mix) are reported as
unknown rather than zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class ServedCounts:
    """Served slates by placement: how many, how many fell back, how many items joined."""

    slates: int
    fallback_slates: int
    items: int
    items_joined: int  # items whose id was found in the catalog snapshot

    @property
    def fallback_share(self) -> float | None:
        return self.fallback_slates / self.slates if self.slates else None

    @property
    def join_rate(self) -> float | None:
        return self.items_joined / self.items if self.items else None


@dataclass(frozen=True)
class ServedSlate:
    """One served slate of a product placement: the viewed product, whether the request
    named a person or a session, and the items as encoded (``product_id`` and
    ``reasons`` are read)."""

    anchor: str
    items: Sequence[Mapping[str, Any]]
    personal: bool = False


class DecisionLogReader(Protocol):
    def served(self, start: datetime, end: datetime) -> Mapping[str, ServedCounts]:
        """Counts per placement for slates served in ``[start, end)``."""
        ...

    def source_mix(self, start: datetime, end: datetime) -> Mapping[str, int]:
        """Items served per candidate source name in ``[start, end)``."""
        ...

    def scores(self, start: datetime, end: datetime) -> npt.NDArray[np.float64]:
        """Ranker scores of the items served in ``[start, end)``."""
        ...

    def anchored(
        self, start: datetime, end: datetime, placements: Sequence[str], limit: int
    ) -> Mapping[str, list[ServedSlate]]:
        """Per placement, its newest ``limit`` slates in ``[start, end)`` whose request
        named a viewed product (the first ``item``), newest first."""
        ...


class EmptyDecisionLog:
    """The default reader: nothing has been served through a decision log yet."""

    def served(self, start: datetime, end: datetime) -> Mapping[str, ServedCounts]:
        return {}

    def source_mix(self, start: datetime, end: datetime) -> Mapping[str, int]:
        return {}

    def scores(self, start: datetime, end: datetime) -> npt.NDArray[np.float64]:
        return np.zeros(0)

    def anchored(
        self, start: datetime, end: datetime, placements: Sequence[str], limit: int
    ) -> Mapping[str, list[ServedSlate]]:
        return {}
