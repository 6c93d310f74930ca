"""Events in another tracker's shape (Segment, Snowplow) -> shelfwise events, then the one
ingestion path.

A tracker sends far more kinds of event than shelfwise uses (``Checkout Started``,
``identify`` traits, page pings): those are *ignored* — answered, not stored, not
quarantined. A message of a kind shelfwise maps is translated field by field
(docs/events.md#segment-and-snowplow has the tables) and then judged like any
event sent to ``POST /v1/events``: accepted, duplicate, or rejected and quarantined
(the translated event, so a fixed catalog lets the quarantine replay it). A message
that is not even in the tracker's shape (not an object, no type) is rejected with the
raw message quarantined.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from shelfwise.contracts.checks import Problem
from shelfwise.contracts.ingest import Ingestor
from shelfwise.contracts.quarantine import Rejection

ExternalStatus = Literal["accepted", "duplicate", "rejected", "ignored"]


@dataclass(frozen=True)
class Ignored:
    """A message of a kind shelfwise does not use."""

    code: str
    message: str


@dataclass(frozen=True)
class Malformed:
    """A message not in the tracker's shape at all."""

    code: str
    message: str


Mapped = dict[str, Any] | Ignored | Malformed
Mapper = Callable[[Any], Mapped]


def external_id(value: Any) -> Any:
    """A tracker's id as shelfwise's string id: numbers (Shopify's product ids) become
    text; anything else is passed on for the contract to judge."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def epoch_ms(value: Any) -> Any:
    """Snowplow's millisecond timestamps (``"1764763200000"``) as RFC 3339; anything
    else is passed on for the contract to judge."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**14:
        return datetime.fromtimestamp(value / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
    return value


def as_object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class ExternalVerdict:
    index: int
    event_id: str | None
    status: ExternalStatus
    type: str | None
    problems: tuple[Problem, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "event_id": self.event_id,
            "status": self.status,
            "type": self.type,
            "problems": [p.as_dict() for p in self.problems],
        }


def ingest_external(
    ingestor: Ingestor, messages: Sequence[Any], mapper: Mapper, source: str
) -> list[ExternalVerdict]:
    """Map each message and ingest the mapped ones in one batch; a verdict per message."""
    mapped = [mapper(m) for m in messages]
    raws: list[Any] = []
    unreadable: dict[int, Rejection] = {}
    positions: dict[int, int] = {}  # message index -> position in ``raws``
    for i, (message, result) in enumerate(zip(messages, mapped, strict=True)):
        if isinstance(result, Ignored):
            continue
        positions[i] = len(raws)
        if isinstance(result, Malformed):
            problem = Problem(result.code, "", result.message)
            unreadable[len(raws)] = Rejection(message, (problem,))
            raws.append(None)
        else:
            raws.append(result)
    report = ingestor.ingest(raws, source, unreadable) if raws else None
    by_position = {v.index: v for v in report.verdicts} if report is not None else {}
    verdicts: list[ExternalVerdict] = []
    for i, result in enumerate(mapped):
        if isinstance(result, Ignored):
            problem = Problem(result.code, "", result.message)
            verdicts.append(ExternalVerdict(i, None, "ignored", None, (problem,)))
            continue
        v = by_position[positions[i]]
        kind = result.get("type") if isinstance(result, dict) else None
        verdicts.append(ExternalVerdict(i, v.event_id, v.status, kind, v.problems))
    return verdicts
