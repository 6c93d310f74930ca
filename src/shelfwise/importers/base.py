"""What every importer shares: the result of reading a source and loading it."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shelfwise.catalog.model import Product
from shelfwise.catalog.repository import CatalogRepository
from shelfwise.contracts.ingest import Ingestor
from shelfwise.contracts.quarantine import ROWS_SUFFIX, Rejection

DEFAULT_BATCH = 5_000


@dataclass
class SourceData:
    """A data set read into the contract's shapes, not yet stored."""

    name: str
    rows: int
    products: list[Product]
    events: list[dict[str, Any]]
    rejections: list[Rejection] = field(default_factory=list)
    row_reasons: Counter[str] = field(default_factory=Counter)


@dataclass
class ImportReport:
    source: str
    rows: int
    products: dict[str, int]
    events: dict[str, int]
    rejected_rows: dict[str, int]
    rejected_events: dict[str, int]
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def load_source(
    data: SourceData,
    catalog: CatalogRepository,
    ingestor: Ingestor,
    *,
    batch_size: int = DEFAULT_BATCH,
    on_progress: Callable[[int], None] | None = None,
    started: float | None = None,
) -> ImportReport:
    """Upsert the products, ingest the events in batches, quarantine the importer's rejections."""
    t0 = started if started is not None else time.perf_counter()
    upserted = catalog.upsert(data.products, source=data.name)
    totals: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for start in range(0, len(data.events), batch_size):
        chunk = data.events[start : start + batch_size]
        report = ingestor.ingest(chunk, source=data.name)
        totals.update(report.counts())
        reasons.update(report.reasons())
        if on_progress is not None:
            on_progress(len(chunk))
    if data.rejections:
        with ingestor.db.engine.begin() as conn:
            ingestor.quarantine.add_in(conn, data.rejections, data.name + ROWS_SUFFIX)
    return ImportReport(
        source=data.name,
        rows=data.rows,
        products=upserted.as_dict(),
        events={k: totals.get(k, 0) for k in ("received", "accepted", "duplicate", "rejected")},
        rejected_rows=dict(sorted(data.row_reasons.items())),
        rejected_events=dict(sorted(reasons.items())),
        seconds=round(time.perf_counter() - t0, 3),
    )
