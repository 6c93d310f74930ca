"""Building the Recommender from a Runtime: sources, stages, model bundle."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from shelfwise.candidates.config import SOURCE_NAMES
from shelfwise.pipeline.governed import Governor
from shelfwise.pipeline.recommender import Recommender, Stages
from shelfwise.serving.baseline import (
    BASELINE_SOURCES,
    BaselineTables,
    baseline_sources,
    popularity_counts,
)
from shelfwise.serving.identity import PersonCache

if TYPE_CHECKING:
    from shelfwise.runtime import Runtime

log = logging.getLogger("shelfwise.pipeline")

# Sources a model bundle provides (``shelfwise.candidates``); a placement may
# name these and the degraded-mode baseline ones.
MODEL_SOURCES = SOURCE_NAMES


def known_sources() -> set[str]:
    return {*BASELINE_SOURCES, *MODEL_SOURCES}


def build_recommender(runtime: Runtime) -> Recommender:
    try:
        counts = popularity_counts(runtime.db)
    except SQLAlchemyError as e:
        log.warning("popularity unavailable (%s): degraded mode uses the catalog order", e)
        counts = {}
    tables = BaselineTables(runtime.snapshot, counts)
    try:
        runtime.identity.warm()  # the request path's PersonCache reads it
    except SQLAlchemyError as e:
        log.warning("identity graph unavailable (%s): people resolve as given for now", e)
    return Recommender(
        settings=runtime.settings,
        snapshot=runtime.snapshot,
        placements=runtime.placements,
        sessions=runtime.sessions,
        decisions=runtime.decisions,
        metrics=runtime.metrics,
        baseline=baseline_sources(tables),
        stages=Stages(rules=Governor(runtime.rules.current), assigner=runtime.assignments),
        bundle_of=lambda: runtime.bundle,
        persons=PersonCache(
            runtime.identity, max_age_seconds=runtime.settings.identity_refresh_seconds
        ),
    )
