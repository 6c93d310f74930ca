"""What rule evaluation returns: the new candidate list and a trace of decisions."""

from __future__ import annotations

from dataclasses import dataclass

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
class SafetyResult:
    """Survivors in their input order, their (boosted) scores, and the trace."""

    items: IntArray
    scores: FloatArray
    trace: tuple[Decision, ...]


@dataclass(frozen=True)
class ArrangeResult:
    """The final slate (at most k items) and the trace of arrangement decisions."""

    items: IntArray
    trace: tuple[Decision, ...]


def decide(c: Compiled, item: int, action: str, why: str | None = None) -> Decision:
    reason = c.rule.reason if why is None else f"{c.rule.reason} ({why})"
    return Decision(c.rule.id, c.rule.version, int(item), action, reason)
