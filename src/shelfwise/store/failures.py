"""What a failed store call means: the store is unreachable, or it refused the data.

The two call for opposite answers. An unreachable store (connection refused or
lost, pool exhausted, the database locked past its timeout) is a 503: nothing
was written, the same call succeeds later, and a background writer keeps its
rows and tries again. A refused write (a constraint, a value the column cannot
hold) fails the same way every time: a request gets a 4xx naming the kind of
refusal, a background writer sets the row aside and goes on.

Both SQLAlchemy's wrapped errors and the drivers' own (a raw psycopg ``COPY``
raises those) are recognised; the kind comes from the SQLSTATE (PostgreSQL) or
the extended result code (SQLite), never from parsing a message.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Literal

import psycopg
import redis
from sqlalchemy import exc as sa

Kind = Literal["unreachable", "conflict", "invalid", "other"]

# Every exception :func:`classify` knows (the API registers a handler for each).
STORE_ERRORS: tuple[type[Exception], ...] = (
    sa.SQLAlchemyError,
    psycopg.Error,
    sqlite3.Error,
    redis.RedisError,
)

_UNREACHABLE: tuple[type[BaseException], ...] = (
    sa.OperationalError,
    sa.InterfaceError,
    sa.DisconnectionError,
    sa.TimeoutError,  # the connection pool's checkout timeout
    psycopg.OperationalError,
    psycopg.InterfaceError,
    redis.ConnectionError,
    redis.TimeoutError,
)

# Integrity violations that are the client's value, not a clash with stored rows.
_INVALID_SQLSTATES = {"23502": "not_null", "23514": "check"}
_CONFLICT_SQLSTATES = {"23505": "unique", "23503": "foreign_key", "23P01": "exclusion"}
_SQLITE_CONSTRAINTS: dict[str, tuple[Kind, str]] = {
    "SQLITE_CONSTRAINT_NOTNULL": ("invalid", "not_null"),
    "SQLITE_CONSTRAINT_CHECK": ("invalid", "check"),
    "SQLITE_CONSTRAINT_UNIQUE": ("conflict", "unique"),
    "SQLITE_CONSTRAINT_PRIMARYKEY": ("conflict", "unique"),
    "SQLITE_CONSTRAINT_FOREIGNKEY": ("conflict", "foreign_key"),
}


@dataclass(frozen=True)
class StoreFailure:
    """``kind`` decides the answer; ``constraint`` (not_null, unique, ...) and ``column``
    say what refused it when the driver tells (safe to show: no value is included);
    ``store`` is which one failed."""

    kind: Kind
    constraint: str | None = None
    column: str | None = None
    store: Literal["database", "redis"] = "database"


def _driver_error(e: BaseException) -> BaseException:
    return e.orig if isinstance(e, sa.DBAPIError) and e.orig is not None else e


def classify(e: BaseException) -> StoreFailure | None:
    """What a store (or Redis) exception means; None when it is not one."""
    if isinstance(e, sa.DBAPIError) and e.connection_invalidated:
        return StoreFailure("unreachable")
    raw = _driver_error(e)
    if isinstance(raw, redis.RedisError):
        kind: Kind = "unreachable" if isinstance(raw, _UNREACHABLE) else "other"
        return StoreFailure(kind, store="redis")
    if isinstance(raw, sqlite3.OperationalError):
        # SQLITE_ERROR is a bad statement (no such table, syntax): a bug, not an outage.
        name = getattr(raw, "sqlite_errorname", "SQLITE_ERROR")
        return StoreFailure("other" if name == "SQLITE_ERROR" else "unreachable")
    if isinstance(e, _UNREACHABLE) or isinstance(raw, _UNREACHABLE):
        return StoreFailure("unreachable")
    if isinstance(raw, psycopg.IntegrityError):
        state = raw.sqlstate or ""
        column = raw.diag.column_name
        if state in _INVALID_SQLSTATES:
            return StoreFailure("invalid", _INVALID_SQLSTATES[state], column)
        return StoreFailure("conflict", _CONFLICT_SQLSTATES.get(state), column)
    if isinstance(raw, sqlite3.IntegrityError):
        found = _SQLITE_CONSTRAINTS.get(getattr(raw, "sqlite_errorname", ""))
        if found is None:
            return StoreFailure("conflict")
        # SQLite's own wording, "NOT NULL constraint failed: <table>.<column>"
        named = str(raw).rpartition(".")[2] if found[1] == "not_null" else None
        return StoreFailure(*found, named or None)
    if isinstance(e, sa.IntegrityError):
        return StoreFailure("conflict")
    if isinstance(e, sa.DataError) or isinstance(raw, (psycopg.DataError, sqlite3.DataError)):
        return StoreFailure("invalid")
    if isinstance(e, STORE_ERRORS):
        return StoreFailure("other")
    return None


def unreachable(e: BaseException) -> bool:
    """Whether ``e`` says the store could not be reached (retry later, keep the data)."""
    got = classify(e)
    return got is not None and got.kind == "unreachable"
