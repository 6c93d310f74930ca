"""Drift of what is viewed, bought and served: a reference window against a current one.

Reads columns from the store with SQL and compares them with ``monitoring.drift``:
the price of viewed and purchased items (a catalog change that moves price
bands shows here), the category mix of recommended items, and, from the
decision log, the candidate-source mix and the ranker's score distribution.
Exposure concentration (Gini, top-1% share), coverage and novelty describe
what the recommendations show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import func, select

from shelfwise.monitoring.decisions import DecisionLogReader, EmptyDecisionLog
from shelfwise.monitoring.drift import (
    CategoricalBins,
    DriftResult,
    FloatArray,
    NumericBins,
    compare,
    gini,
    numeric_labels,
    top_share,
)
from shelfwise.monitoring.query import epoch_bucket
from shelfwise.store.engine import Database
from shelfwise.store.tables import interactions, products

DAY = 86_400


@dataclass(frozen=True)
class Exposure:
    gini: float
    top_1pct_share: float
    coverage: float
    novelty_bits: float
    items_shown: int


@dataclass(frozen=True)
class DriftReport:
    reference: tuple[datetime, datetime]
    current: tuple[datetime, datetime]
    results: list[DriftResult]
    exposure_reference: Exposure
    exposure_current: Exposure

    @property
    def drifted(self) -> list[str]:
        return [r.name for r in self.results if r.drifted]


def _prices(db: Database, start: datetime, end: datetime) -> tuple[FloatArray, np.ndarray]:
    i = interactions
    stmt = select(i.c.unit_price, epoch_bucket(i.c.occurred_at, db.backend, DAY)).where(
        i.c.type.in_(("product_view", "purchase")),
        i.c.unit_price.is_not(None),
        i.c.occurred_at >= start,
        i.c.occurred_at < end,
    )
    with db.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    if not rows:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    price, day = zip(*rows, strict=True)
    return np.array(price, dtype=float), np.array(day, dtype=np.int64)


def _shown(
    db: Database, start: datetime, end: datetime
) -> tuple[list[str], list[str], list[int], list[int]]:
    """Per (product, day) of recommended items: product ids, categories, days, counts."""
    i, p = interactions, products
    day = epoch_bucket(i.c.occurred_at, db.backend, DAY)
    category = func.coalesce(p.c.category_path, "(unknown)")
    stmt = (
        select(i.c.product_id, category, day, func.count())
        .select_from(i.outerjoin(p, p.c.product_id == i.c.product_id))
        .where(i.c.type == "rec_impression", i.c.occurred_at >= start, i.c.occurred_at < end)
        .group_by(i.c.product_id, category, day)
    )
    with db.engine.connect() as conn:
        rows = conn.execute(stmt).all()
    if not rows:
        return [], [], [], []
    ids, cats, days, counts = zip(*rows, strict=True)
    return (
        list(ids),
        [c.split("/")[0] for c in cats],
        [int(d) for d in days],
        [int(n) for n in counts],
    )


def _exposure(
    ids: list[str], counts: list[int], popularity: dict[str, float], catalog_size: int
) -> Exposure:
    per: dict[str, float] = {}
    for pid, n in zip(ids, counts, strict=True):
        per[pid] = per.get(pid, 0.0) + n
    shown = np.array(list(per.values()), dtype=float)
    pop = np.array([popularity.get(pid, 0.0) for pid in per], dtype=float)
    total_pop = np.array(list(popularity.values()), dtype=float)
    size = max(catalog_size, len(per), 1)
    # Novelty needs p(item) over the whole popularity table, not only shown items.
    p_all = (pop + 1.0) / (total_pop.sum() + max(total_pop.size, 1))
    nov = float((shown * -np.log2(p_all)).sum() / shown.sum()) if shown.sum() else 0.0
    return Exposure(
        gini=gini(np.concatenate([shown, np.zeros(max(size - shown.size, 0))])),
        top_1pct_share=top_share(shown, size),
        coverage=len(per) / size,
        novelty_bits=nov,
        items_shown=int(shown.sum()),
    )


def _popularity(db: Database, start: datetime, end: datetime) -> dict[str, float]:
    i = interactions
    stmt = (
        select(i.c.product_id, func.count())
        .where(
            i.c.type.in_(("product_view", "add_to_cart", "purchase")),
            i.c.occurred_at >= start,
            i.c.occurred_at < end,
        )
        .group_by(i.c.product_id)
    )
    with db.engine.connect() as conn:
        return {str(pid): float(n) for pid, n in conn.execute(stmt)}


def _per_day(values: FloatArray, days: np.ndarray, bins: NumericBins) -> list[FloatArray]:
    return [bins.counts(values[days == d]) for d in np.unique(days)]


def drift_report(
    db: Database,
    reference: tuple[datetime, datetime],
    current: tuple[datetime, datetime],
    catalog_size: int,
    decisions: DecisionLogReader | None = None,
) -> DriftReport:
    """Compare ``current`` with ``reference``; bins and thresholds come from the reference."""
    decisions = decisions or EmptyDecisionLog()
    results: list[DriftResult] = []

    ref_p, ref_d = _prices(db, *reference)
    cur_p, _ = _prices(db, *current)
    if ref_p.size:
        bins = NumericBins.from_reference(ref_p)
        results.append(
            compare(
                "price of viewed and bought items",
                numeric_labels(bins),
                bins.counts(ref_p),
                bins.counts(cur_p),
                _per_day(ref_p, ref_d, bins),
            )
        )

    r_ids, r_cats, r_days, r_n = _shown(db, *reference)
    c_ids, c_cats, _, c_n = _shown(db, *current)
    if r_ids:
        cbins = CategoricalBins.from_reference(r_cats)
        rc = np.repeat(np.array(r_cats, dtype=object), r_n)
        rd = np.repeat(np.array(r_days), r_n)
        cc = np.repeat(np.array(c_cats, dtype=object), c_n) if c_cats else np.array([], dtype=str)
        results.append(
            compare(
                "category mix of recommended items",
                (*cbins.levels, "other"),
                cbins.counts(list(rc)),
                cbins.counts(list(cc)),
                [cbins.counts(list(rc[rd == d])) for d in np.unique(rd)],
            )
        )

    ref_mix, cur_mix = decisions.source_mix(*reference), decisions.source_mix(*current)
    if ref_mix:
        levels = tuple(sorted(ref_mix))
        results.append(
            compare(
                "candidate source mix",
                (*levels, "other"),
                np.array([*(ref_mix[k] for k in levels), 0], dtype=float),
                np.array(
                    [
                        *(cur_mix.get(k, 0) for k in levels),
                        sum(v for k, v in cur_mix.items() if k not in ref_mix),
                    ],
                    dtype=float,
                ),
                [],
            )
        )
    ref_s, cur_s = decisions.scores(*reference), decisions.scores(*current)
    if ref_s.size:
        sbins = NumericBins.from_reference(ref_s)
        results.append(
            compare(
                "ranker score", numeric_labels(sbins), sbins.counts(ref_s), sbins.counts(cur_s), []
            )
        )

    popularity = _popularity(db, *reference)
    return DriftReport(
        reference=reference,
        current=current,
        results=results,
        exposure_reference=_exposure(r_ids, r_n, popularity, catalog_size),
        exposure_current=_exposure(c_ids, c_n, popularity, catalog_size),
    )
