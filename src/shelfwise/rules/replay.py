"""Recorded requests at the boundary (external ids) and their replay through a rulebook."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from shelfwise.candidates.base import FloatArray, IntArray, RecContext
from shelfwise.catalog import CatalogSnapshot
from shelfwise.errors import InvalidInput
from shelfwise.rules.rulebook import Rulebook
from shelfwise.rules.trace import Decision


class CandidateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: str
    score: float
    value: float | None = Field(default=None, description="The ranker's expected value, if known.")


class RecordedRequestIn(BaseModel):
    """A served request as the decision log keeps it: its context and scored candidates."""

    model_config = ConfigDict(extra="forbid")

    placement: str
    now: datetime | None = None
    context_items: list[str] = []
    cart_items: list[str] = []
    segment: dict[str, str] = {}
    candidates: list[CandidateIn | str]  # a bare id scores by its position (first = best)

    def to_request(self, snapshot: CatalogSnapshot, now: datetime) -> RecordedRequest:
        """Map ids to dense indices; ids the catalog does not know are dropped."""
        n = len(self.candidates)
        rows = [
            c if isinstance(c, CandidateIn) else CandidateIn(product_id=c, score=float(n - j))
            for j, c in enumerate(self.candidates)
        ]
        known = [(snapshot.index_of(c.product_id), c) for c in rows]
        kept = [(i, c) for i, c in known if i is not None]
        values = [c.value for _, c in kept]
        when = self.now or now
        if when.tzinfo is None:
            raise InvalidInput("request times need a time zone", code="naive_datetime")
        ctx = RecContext(
            placement=self.placement,
            now=when,
            context_items=tuple(
                i for p in self.context_items if (i := snapshot.index_of(p)) is not None
            ),
            cart_items=tuple(i for p in self.cart_items if (i := snapshot.index_of(p)) is not None),
            segment=dict(self.segment),
        )
        return RecordedRequest(
            ctx=ctx,
            items=np.array([i for i, _ in kept], dtype=np.int64),
            scores=np.array([c.score for _, c in kept], dtype=np.float64),
            values=None if any(v is None for v in values) else np.array(values, dtype=np.float64),
        )


@dataclass(frozen=True)
class RecordedRequest:
    ctx: RecContext
    items: IntArray
    scores: FloatArray
    values: FloatArray | None = None  # None: score x price


@dataclass(frozen=True)
class Served:
    items: IntArray
    trace: tuple[Decision, ...]


def serve(book: Rulebook, request: RecordedRequest, k: int) -> Served:
    """Safety rules, then rank by the (boosted) scores, then arrangement: the slate."""
    safe = book.apply_safety(request.ctx, request.items, request.scores)
    order = np.argsort(-safe.scores, kind="stable")
    arranged = book.arrange(request.ctx, safe.items[order], safe.scores[order], k)
    return Served(arranged.items, safe.trace + arranged.trace)
