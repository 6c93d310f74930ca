"""What came of served slates: the purchase lines that carry their rec_id.

The rules' impact preview prices a slate with the purchase rate of each position
of its placement, measured on the slates it replays (``pipeline/preview.py``).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from shelfwise.store.engine import Database
from shelfwise.store.tables import interactions

CHUNK = 500  # rec_ids per query (bound-parameter limits)


def purchases_of(db: Database, rec_ids: Iterable[str]) -> dict[str, set[str]]:
    """rec_id -> the product ids of the purchase lines that carry it."""
    wanted = sorted({r for r in rec_ids if r})
    out: dict[str, set[str]] = {}
    t = interactions.c
    with db.engine.connect() as conn:
        for start in range(0, len(wanted), CHUNK):
            query = select(t.rec_id, t.product_id).where(
                t.type == "purchase", t.rec_id.in_(wanted[start : start + CHUNK])
            )
            for rec_id, product_id in conn.execute(query):
                out.setdefault(str(rec_id), set()).add(str(product_id))
    return out
