"""Secrets the installation generates for itself and keeps in the store.

A secret is made on first use and inserted only if absent, in one statement, so
two workers (or machines) starting together end up reading the same value.
Rotating one: delete its row in ``instance_secrets`` and restart every worker.
"""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from shelfwise.store.engine import Database
from shelfwise.store.tables import instance_secrets
from shelfwise.store.types import utcnow


def instance_secret(db: Database, name: str) -> str:
    """The installation's secret ``name`` (256 random bits, URL-safe text)."""
    dialect = postgresql if db.backend == "postgresql" else sqlite
    row = {"name": name, "value": secrets.token_urlsafe(32), "created_at": utcnow()}
    insert = dialect.insert(instance_secrets).values(**row)
    with db.engine.begin() as conn:
        conn.execute(insert.on_conflict_do_nothing(index_elements=["name"]))
        value = conn.execute(
            select(instance_secrets.c.value).where(instance_secrets.c.name == name)
        ).scalar_one()
    return str(value)
