"""What every candidate source speaks: a request context in, scored items with reasons out.

Items are dense catalog indices (``CatalogSnapshot.vocab``) everywhere inside
the request path; external ids appear only at the API boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SessionEvent:
    """One event of the live session, already mapped to a dense item index."""

    item: int
    type: str  # product_view | add_to_cart | remove_from_cart | purchase | rec_click
    at: datetime


@dataclass(frozen=True)
class RecContext:
    """Everything a source, a rule or the ranker may look at for one request."""

    placement: str
    now: datetime
    person_id: str | None = None
    context_items: tuple[int, ...] = ()  # the viewed product(s)
    cart_items: tuple[int, ...] = ()
    session: tuple[SessionEvent, ...] = ()  # oldest first
    segment: dict[str, str] = field(default_factory=dict)  # platform, new/returning, ...
    exclude: frozenset[int] = frozenset()  # never propose these (already in cart, ...)


@dataclass(frozen=True)
class Reason:
    """Why a source proposed an item, renderable for a shopper.

    ``kind`` is a stable key (``bought_with``, ``also_viewed``, ``similar_to``,
    ``goes_with``, ``browsed_with``, ``because_you_viewed``, ``because_you_bought``,
    ``popular_in``, ``trending_in``, ``seasonal``, ``buy_again``, ``for_you``);
    ``anchor`` is the item the reason refers to (always one the shopper has seen,
    viewed or bought as the kind says), ``label`` a category (always the
    proposed item's own) or other text. A reason must be true for the request:
    personal kinds only with a person or a session.
    """

    source: str
    kind: str
    anchor: int | None = None
    label: str | None = None
    fallback: bool = False


@dataclass(frozen=True)
class Proposal:
    """One source's answer: unique items, finite scores (higher is better), one reason each."""

    source: str
    items: IntArray
    scores: FloatArray
    reasons: tuple[Reason, ...]

    def __post_init__(self) -> None:
        if not (len(self.items) == len(self.scores) == len(self.reasons)):
            raise ValueError("items, scores and reasons must have the same length")

    @classmethod
    def empty(cls, source: str) -> Proposal:
        return cls(source, np.zeros(0, dtype=np.int64), np.zeros(0), ())


class Source(Protocol):
    """A named candidate source with its own config."""

    name: str

    def propose(self, ctx: RecContext, k: int) -> Proposal: ...


def shallower(p: Proposal, asked_at: int, depth: int) -> Proposal | None:
    """What a source whose ``prefix_exact`` is true proposes at ``depth``, from its
    proposal ``p`` asked at ``asked_at`` >= ``depth``; None when ``p`` cannot say.

    Such a source's proposal at depth k is ``top_k`` (``candidates/neighbours.py``) of
    scores that do not depend on k: best first, ties by position. Its first ``depth``
    items are the same at any greater depth, unless a tie straddles the cut (``top_k``
    then chooses among the tied ones by partition, not by position): the source must
    be asked again."""
    n = len(p.items)
    if asked_at < depth:
        return None
    if n <= depth:
        return p  # the source had no more than this to propose
    if not p.scores[depth - 1] > p.scores[depth]:
        return None  # a tie across the cut
    return Proposal(p.source, p.items[:depth], p.scores[:depth], p.reasons[:depth])


def load_array(path: Path, mmap: bool = True) -> Any:
    """A saved array, memory-mapped read-only (``mmap``: every worker shares the file's
    pages) as a plain ndarray view: indexing an ``np.memmap`` makes a memmap object per
    slice, which the request path paid on every read."""
    got = np.load(path, mmap_mode="r" if mmap else None)
    return np.asarray(got) if mmap else got
