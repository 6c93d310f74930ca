"""What the request path is assembled from: the sources a placement may name and
the degraded-mode baseline (the Runtime wires the rest)."""

from __future__ import annotations

import logging

from sqlalchemy.exc import SQLAlchemyError

from shelfwise.candidates.config import SOURCE_NAMES
from shelfwise.catalog import CatalogSnapshot
from shelfwise.serving.baseline import BASELINE_SOURCES, BaselineTables, popularity_counts
from shelfwise.store import Database

log = logging.getLogger("shelfwise.pipeline")

# Sources a model bundle provides (``shelfwise.candidates``); a placement may
# name these and the degraded-mode baseline ones.
MODEL_SOURCES = SOURCE_NAMES


def known_sources() -> set[str]:
    return {*BASELINE_SOURCES, *MODEL_SOURCES}


def baseline_tables(db: Database, snapshot: CatalogSnapshot) -> BaselineTables:
    """Popularity from the store for the degraded mode; the catalog order when the
    store cannot say."""
    try:
        counts = popularity_counts(db)
    except SQLAlchemyError as e:
        log.warning("popularity unavailable (%s): degraded mode uses the catalog order", e)
        counts = {}
    return BaselineTables(snapshot, counts)
