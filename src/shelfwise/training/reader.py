"""Reading the interaction log of a time window from the store."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import select

from shelfwise.candidates.log import KINDS, InteractionLog, Resolve, Row, identity
from shelfwise.store.engine import Database
from shelfwise.store.tables import interactions

_BATCH = 20_000


def _rows(db: Database, start: datetime | None, end: datetime | None) -> Iterator[Row]:
    t = interactions.c
    query = select(
        t.type,
        t.occurred_at,
        t.anonymous_id,
        t.customer_id,
        t.session_id,
        t.event_id,
        t.product_id,
        t.quantity,
        t.unit_price,
    ).where(t.type.in_(KINDS))
    if start is not None:
        query = query.where(t.occurred_at >= start)
    if end is not None:
        query = query.where(t.occurred_at < end)
    with db.engine.connect() as conn:
        result = conn.execution_options(yield_per=_BATCH).execute(query)
        for r in result:
            yield Row(
                person=r.customer_id or r.anonymous_id,
                item=r.product_id,
                kind=r.type,
                at=r.occurred_at,
                basket=r.session_id or r.event_id,
                quantity=float(r.quantity),
                price=float("nan") if r.unit_price is None else float(r.unit_price),
            )


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
    return InteractionLog.from_rows(_rows(db, start, end), items=items, resolve=resolve)
