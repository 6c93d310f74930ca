"""What came of served slates: the purchase lines that carry their rec_id.

The rules' impact preview prices a slate with the purchase rate of each position
of its placement, measured on the slates it replays (``pipeline/preview.py``).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from shelfwise.contracts.reconcile import canonical
from shelfwise.store.engine import Database
from shelfwise.store.tables import interactions

CHUNK = 500  # rec_ids per query (bound-parameter limits)


def purchases_of(db: Database, rec_ids: Iterable[str]) -> dict[str, dict[str, int]]:
    """rec_id -> product id -> units bought on the purchase lines that carry it.

    The product ids are in their :func:`~shelfwise.contracts.reconcile.canonical`
    form: a line whose client wrote the id differently (case, spaces, leading zeros)
    still joins the slate item it was bought from."""
    wanted = sorted({r for r in rec_ids if r})
    out: dict[str, dict[str, int]] = {}
    t = interactions.c
    with db.engine.connect() as conn:
        for start in range(0, len(wanted), CHUNK):
            query = select(t.rec_id, t.product_id, t.quantity).where(
                t.type == "purchase", t.rec_id.in_(wanted[start : start + CHUNK])
            )
            for rec_id, product_id, quantity in conn.execute(query):
                units = out.setdefault(str(rec_id), {})
                key = canonical(str(product_id))
                units[key] = units.get(key, 0) + int(quantity)
    return out
