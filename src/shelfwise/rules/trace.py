"""What rule evaluation returns: the new candidate list and a trace of decisions.

The trace is recorded as chunks (one rule, one action, an array of items) and
expanded into :class:`Decision` rows only when read, so tracing hundreds of
boosted or removed candidates costs a few array copies on the request path.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from shelfwise.candidates.base import FloatArray, IntArray
from shelfwise.rules.compiled import Compiled


@dataclass(frozen=True)
class Decision:
    """One traced decision: which rule (at which version) did what to which item, and why."""

    rule_id: str
    version: int
    item: int  # dense catalog index
    action: str  # removed | boosted | buried | deduped | capped | pinned | pin_blocked
    reason: str


@dataclass(frozen=True)
class TraceChunk:
    rule_id: str
    version: int
    action: str
    reason: str
    items: IntArray


def decide(c: Compiled, items: IntArray | int, action: str, why: str | None = None) -> TraceChunk:
    reason = c.rule.reason if why is None else f"{c.rule.reason} ({why})"
    arr = np.atleast_1d(np.asarray(items, dtype=np.int64))
    return TraceChunk(c.rule.id, c.rule.version, action, reason, arr)


@dataclass(frozen=True)
class _Traced:
    chunks: tuple[TraceChunk, ...]

    @cached_property
    def trace(self) -> tuple[Decision, ...]:
        """Every decision in evaluation order."""
        return tuple(
            Decision(ch.rule_id, ch.version, item, ch.action, ch.reason)
            for ch in self.chunks
            for item in ch.items.tolist()
        )

    def trace_by_item(self) -> dict[int, list[Decision]]:
        """Decisions grouped by item (what a slate's per-item explanation needs)."""
        out: dict[int, list[Decision]] = {}
        for d in self.trace:
            out.setdefault(d.item, []).append(d)
        return out


@dataclass(frozen=True)
class SafetyResult(_Traced):
    """Survivors in their input order, their (boosted) scores, and the trace."""

    items: IntArray
    scores: FloatArray


@dataclass(frozen=True)
class ArrangeResult(_Traced):
    """The final slate (at most k items) and the trace of arrangement decisions."""

    items: IntArray
