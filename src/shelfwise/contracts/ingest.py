"""The one ingestion path: validate, give each event a verdict, store durably, quarantine.

The HTTP endpoint, the file import, quarantine replay and the data-set
importers all call :meth:`Ingestor.ingest`. For a batch of raw events it

1. validates the whole list with one pydantic call (the common all-good case
   costs one call, not one per event) and maps errors onto stable codes with
   field paths;
2. runs the semantic checks (clock skew, revenue vs lines, optionally catalog
   membership);
3. in ONE transaction stores the accepted events (duplicates by ``event_id``,
   earlier or in the same batch, are reported, not stored), quarantines the
   rejected ones with their raw payload, and lets observers (identity
   stitching) see the fresh events;
4. returns only after that transaction committed, so every ``accepted``
   verdict a caller passes on is durable.

Every raw event gets exactly one verdict, so stored + duplicate + quarantined
always equals received.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails
from sqlalchemy import Connection

from shelfwise.config import Settings
from shelfwise.contracts.checks import (
    Problem,
    SemanticRules,
    field_path,
    product_ids_of,
    semantic_problems,
    shape_problems,
)
from shelfwise.contracts.events import Event
from shelfwise.contracts.eventstore import EventStore
from shelfwise.contracts.quarantine import Quarantine, Rejection
from shelfwise.store.engine import Database
from shelfwise.store.types import utcnow
from shelfwise.values import is_clean_id

Status = Literal["accepted", "duplicate", "rejected"]
BATCH_ADAPTER: TypeAdapter[list[Event]] = TypeAdapter(list[Event])


class Observer(Protocol):
    """Sees the freshly stored events inside the ingestion transaction."""

    def observe_in(self, conn: Connection, events: Sequence[Event]) -> None: ...


@dataclass(frozen=True, slots=True)
class Verdict:
    index: int
    event_id: str | None
    status: Status
    problems: tuple[Problem, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "index": self.index,
            "event_id": self.event_id,
            "status": self.status,
        }
        if self.problems:
            out["problems"] = [p.as_dict() for p in self.problems]
        return out


@dataclass
class IngestReport:
    verdicts: list[Verdict] = field(default_factory=list)

    def count(self, status: Status) -> int:
        return sum(1 for v in self.verdicts if v.status == status)

    @property
    def received(self) -> int:
        return len(self.verdicts)

    def counts(self) -> dict[str, int]:
        out = {"received": self.received, "accepted": 0, "duplicate": 0, "rejected": 0}
        for v in self.verdicts:
            out[v.status] += 1
        return out

    def reasons(self) -> dict[str, int]:
        """Rejections per problem code."""
        out: dict[str, int] = defaultdict(int)
        for v in self.verdicts:
            for p in v.problems:
                out[p.code] += 1
        return dict(sorted(out.items()))


@dataclass
class ReplayReport:
    accepted: int = 0
    duplicate: int = 0
    still_rejected: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class Checked:
    """The outcome of validation: the sound events and the rejections, by position."""

    events: dict[int, Event]
    rejected: dict[int, Rejection]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a batch's objects are built.

    Validation allocates a few objects per field; CPython's collector then runs
    full passes over every live object again and again, which measured 3-4x the
    cost of the validation itself. Nothing in a batch forms reference cycles.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _raw_str(raw: Any, key: str) -> str | None:
    """A field of a refused payload, when it can be echoed and stored as it is."""
    if isinstance(raw, dict):
        value = raw.get(key)
        if is_clean_id(value):
            return str(value)
    return None


class Ingestor:
    """Validation + verdicts + durable storage + quarantine, for every entry point."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        known_product: Callable[[str], bool] | None = None,
        observers: Sequence[Observer] = (),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.store = EventStore(db)
        self.quarantine = Quarantine(db)
        self.rules = SemanticRules(
            future_tolerance=timedelta(seconds=settings.event_future_tolerance_seconds),
            revenue_tolerance=settings.revenue_tolerance,
        )
        self.known_product = known_product if settings.require_known_products else None
        self.observers = list(observers)
        self.clock = clock

    def check(self, raws: Sequence[Any]) -> Checked:
        """Shape and semantic checks for a batch; no I/O."""
        parsed: dict[int, Event] = {}
        rejected: dict[int, Rejection] = {}
        try:
            parsed = dict(enumerate(BATCH_ADAPTER.validate_python(raws)))
        except ValidationError as exc:
            by_index: dict[int, list[ErrorDetails]] = defaultdict(list)
            for err in exc.errors():
                loc = err["loc"]
                idx = loc[0] if loc and isinstance(loc[0], int) else -1
                by_index[idx].append({**err, "loc": loc[1:]})
            if -1 in by_index:  # not a list at all: the caller's bug, not an event's
                raise
            good = [i for i in range(len(raws)) if i not in by_index]
            if good:
                parsed = dict(
                    zip(good, BATCH_ADAPTER.validate_python([raws[i] for i in good]), strict=True)
                )
            for i, errs in by_index.items():
                raw = raws[i]
                rejected[i] = Rejection(
                    raw,
                    tuple(shape_problems(errs)),
                    _raw_str(raw, "event_id"),
                    _raw_str(raw, "type"),
                )
        now = self.clock()
        for i, e in list(parsed.items()):
            problems = semantic_problems(e, now, self.rules)
            if self.known_product is not None:
                problems.extend(self._unknown_products(e))
            if problems:
                del parsed[i]
                rejected[i] = Rejection(raws[i], tuple(problems), e.event_id, e.type)
        return Checked(events=parsed, rejected=rejected)

    def _unknown_products(self, e: Event) -> list[Problem]:
        assert self.known_product is not None
        ids = product_ids_of(e)
        many = e.type in ("purchase", "return", "rec_impression")
        key = "items" if e.type == "rec_impression" else "lines"
        return [
            Problem(
                "unknown_product",
                field_path([key, n, "product_id"]) if many else "product_id",
                f"product {pid!r} is not in the catalog",
            )
            for n, pid in enumerate(ids)
            if not self.known_product(pid)
        ]

    def ingest(
        self,
        raws: Sequence[Any],
        source: str = "api",
        unreadable: Mapping[int, Rejection] | None = None,
    ) -> IngestReport:
        """Verdict per raw event; returns after the batch is committed.

        ``unreadable`` marks positions the caller could not even decode (a line
        that is not JSON): they are rejected with the given reasons."""
        with gc_paused():
            checked = self.check(raws)
            if unreadable:
                for i, rej in unreadable.items():
                    checked.events.pop(i, None)
                    checked.rejected[i] = rej
            with self.db.engine.begin() as conn:
                verdicts = self.commit_in(conn, raws, checked, source)
        return IngestReport(verdicts)

    def replay(self, ids: Sequence[int] | None = None, batch_size: int = 1_000) -> ReplayReport:
        """Re-validate quarantined events (all open ones by default); those that now
        pass are stored (or found already stored) and marked ``replayed``; the others
        stay open with their current reasons."""
        todo = list(ids) if ids is not None else self.quarantine.open_ids()
        report = ReplayReport()
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            with gc_paused(), self.db.engine.begin() as conn:
                entries = [
                    e for e in self.quarantine.get_many_in(conn, chunk) if e.status == "open"
                ]
                checked = self.check([e.payload for e in entries])
                order = sorted(checked.events)
                fresh = self.store.append_in(conn, [checked.events[i] for i in order])
                stored = [checked.events[i] for i, new in zip(order, fresh, strict=True) if new]
                for obs in self.observers:
                    obs.observe_in(conn, stored)
                self.quarantine.mark_replayed_in(conn, [entries[i].id for i in order])
                for i, rej in checked.rejected.items():
                    self.quarantine.update_reasons_in(conn, entries[i].id, rej.problems)
            report.accepted += sum(fresh)
            report.duplicate += len(fresh) - sum(fresh)
            report.still_rejected += len(checked.rejected)
        return report

    def commit_in(
        self, conn: Connection, raws: Sequence[Any], checked: Checked, source: str
    ) -> list[Verdict]:
        order = sorted(checked.events)
        batch = [checked.events[i] for i in order]
        fresh = self.store.append_in(conn, batch) if batch else []
        self.quarantine.add_in(conn, list(checked.rejected.values()), source)
        self.quarantine.count_duplicates_in(
            conn, [e for e, new in zip(batch, fresh, strict=True) if not new]
        )
        stored = [e for e, new in zip(batch, fresh, strict=True) if new]
        for obs in self.observers:
            obs.observe_in(conn, stored)
        status: dict[int, Status] = {
            i: "accepted" if new else "duplicate" for i, new in zip(order, fresh, strict=True)
        }
        out: list[Verdict] = []
        for i in range(len(raws)):
            rej = checked.rejected.get(i)
            if rej is not None:
                out.append(Verdict(i, rej.event_id, "rejected", rej.problems))
            else:
                out.append(Verdict(i, checked.events[i].event_id, status[i]))
        return out
