"""Real public data sets into catalog rows and contract-valid events.

Every importer reads its files, builds ``Product`` rows and raw events, and
hands them to the same :class:`~shelfwise.contracts.ingest.Ingestor` the HTTP
endpoint uses. What an importer refuses before that (a non-merchandise stock
code, a stock adjustment) is quarantined with its reason, like any rejected
event, and counted in the :class:`ImportReport`.
"""

from shelfwise.importers.base import ImportReport, SourceData, load_source

__all__ = ["ImportReport", "SourceData", "load_source"]
