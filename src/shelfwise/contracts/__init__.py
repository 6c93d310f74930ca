"""Signal contracts: event schemas, the event store, validation, quarantine, identity."""

from shelfwise.contracts.checks import Problem
from shelfwise.contracts.events import EVENT_TYPES, SCHEMA_VERSION, Event, parse_event
from shelfwise.contracts.eventstore import EventStore
from shelfwise.contracts.ingest import Ingestor, IngestReport, Verdict
from shelfwise.contracts.quarantine import Quarantine

__all__ = [
    "EVENT_TYPES",
    "SCHEMA_VERSION",
    "Event",
    "EventStore",
    "IngestReport",
    "Ingestor",
    "Problem",
    "Quarantine",
    "Verdict",
    "parse_event",
]
