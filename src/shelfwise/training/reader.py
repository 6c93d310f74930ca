"""Reading the interaction log of a time window from the store.

Timestamps are read as epoch seconds computed by the database (``julianday``
on SQLite, ``extract(epoch)`` on PostgreSQL), so half a million rows do not go
through a Python datetime each.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Float, cast, func, select

from shelfwise.candidates.log import KINDS, InteractionLog, Resolve, identity
from shelfwise.contracts.ingest import gc_paused
from shelfwise.store.engine import Database
from shelfwise.store.tables import interactions

_BATCH = 50_000
_UNIX_JULIAN_DAY = 2440587.5


def _epoch(db: Database) -> Any:
    col = interactions.c.occurred_at
    if db.backend == "sqlite":
        return (func.julianday(col) - _UNIX_JULIAN_DAY) * 86400.0
    return cast(func.extract("epoch", col), Float)


def read_log(
    db: Database,
    start: datetime | None = None,
    end: datetime | None = None,
    items: Sequence[str] = (),
    resolve: Resolve = identity,
) -> InteractionLog:
    """The learned-from interactions in ``[start, end)``; ``items`` fixes the item order.

    A person is ``resolve(customer_id or anonymous_id)``; a basket is the
    session, or the event itself (one order) when there is no session.
    """
    t = interactions.c
    query = select(
        func.coalesce(t.customer_id, t.anonymous_id),
        t.product_id,
        t.type,
        _epoch(db),
        func.coalesce(t.session_id, t.event_id),
        t.quantity,
        t.unit_price,
    ).where(t.type.in_(KINDS))
    if start is not None:
        query = query.where(t.occurred_at >= start)
    if end is not None:
        query = query.where(t.occurred_at < end)
    cols: list[list[Any]] = [[] for _ in range(7)]
    with gc_paused(), db.engine.connect() as conn:  # millions of rows, no cycles
        result = conn.execution_options(yield_per=_BATCH).execute(query)
        for chunk in result.partitions():
            for col, values in zip(cols, zip(*chunk, strict=True), strict=True):
                col.extend(values)
    people, products, kinds, at, baskets, quantity, price = cols
    return InteractionLog.from_columns(
        people=people,
        products=products,
        kinds=kinds,
        at=np.array(at, dtype=np.float64).round(6),
        baskets=baskets,
        quantity=np.array(quantity, dtype=np.float64),
        price=np.array([np.nan if p is None else p for p in price], dtype=np.float64),
        items=items,
        resolve=resolve,
    )
