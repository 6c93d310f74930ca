"""Signal contracts: event schemas, the event store, validation, quarantine, identity."""

from shelfwise.contracts.events import EVENT_TYPES, SCHEMA_VERSION, Event, parse_event
from shelfwise.contracts.eventstore import EventStore

__all__ = ["EVENT_TYPES", "SCHEMA_VERSION", "Event", "EventStore", "parse_event"]
