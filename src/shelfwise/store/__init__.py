"""Storage: one SQLAlchemy Core metadata, the same code on SQLite and PostgreSQL."""

from shelfwise.store.engine import Database, connect
from shelfwise.store.migrate import upgrade

__all__ = ["Database", "connect", "upgrade"]
