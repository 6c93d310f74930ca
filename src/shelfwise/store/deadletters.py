"""What keeps a background thread alive: dead letters for refused rows, back-off for outages.

A background thread (the decision-log writer, the alert evaluator) must never stop
on one bad row. When the store *refuses* a row (:func:`~shelfwise.store.failures.classify`
says ``conflict``, ``invalid`` or ``other``), the thread hands it to
:meth:`DeadLetters.keep`: the row goes to the ``dead_letters`` table (as ASCII JSON,
so a value the store refused once is storable there), the failure is counted and
logged with the row's key, and the thread goes on with the next row. When the store
is *unreachable*, nothing is set aside: the thread keeps its rows and waits
:class:`Backoff`'s growing delay before it tries again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from shelfwise.store.engine import Database
from shelfwise.store.failures import classify, unreachable
from shelfwise.store.tables import dead_letters
from shelfwise.store.types import utcnow

log = logging.getLogger("shelfwise.store.deadletters")

# thread, kind: "row" (a row set aside), "unreachable" (a round found the store
# down), "error" (a round failed otherwise)
OnFailure = Callable[[str, str], None]


def ascii_json(value: Any) -> str:
    """``value`` as JSON text any store holds: non-ASCII and NULs escaped, surrogates too."""
    return json.dumps(value, default=str, ensure_ascii=True)


def describe(e: BaseException) -> str:
    """What refused a row, without any of its values: ``kind[:constraint[:column]]``
    (``invalid:not_null:mode``) and the exception's class."""
    got = classify(e)
    parts = [p for p in (got.kind, got.constraint, got.column) if p] if got else ["other"]
    return f"{':'.join(parts)} ({type(e).__name__})"[:256]


@dataclass(frozen=True)
class DeadLetter:
    id: int
    thread: str
    item_key: str
    error: str
    payload: Any
    failed_at: datetime


class DeadLetters:
    """Rows ``thread`` could not store. ``on_failure(thread, kind)`` counts failures
    (the Prometheus counter ``shelfwise_background_failures_total``)."""

    def __init__(self, db: Database, thread: str, on_failure: OnFailure | None = None) -> None:
        self.db = db
        self.thread = thread
        self.on_failure = on_failure
        self.kept = 0

    def count(self, kind: str) -> None:
        if self.on_failure is not None:
            self.on_failure(self.thread, kind)

    def keep(self, key: str, payload: Any, error: BaseException) -> None:
        """Set one refused row aside. Raises only when the store became unreachable
        before the row was kept: the caller then keeps the row and retries it later, as
        for any outage (set aside nowhere, it would be lost)."""
        self.kept += 1
        self.count("row")
        reason = describe(error)
        key_text = ascii_json(key)[1:-1][:512] if isinstance(key, str) else ascii_json(key)
        log.error(
            "%s: row %s refused by the store (%s); kept in dead_letters",
            self.thread,
            key_text,
            reason,
        )
        try:
            with self.db.engine.begin() as conn:
                conn.execute(
                    dead_letters.insert().values(
                        thread=self.thread,
                        item_key=key_text,
                        error=reason,
                        payload=ascii_json(payload),
                        failed_at=utcnow(),
                    )
                )
        except Exception as e:
            if unreachable(e):
                raise
            # The row is not lost from view: the log line above names it, this one holds it.
            log.exception(
                "%s: row %s not kept in dead_letters: %s",
                self.thread,
                key_text,
                ascii_json(payload),
            )

    def list(self, limit: int = 100) -> list[DeadLetter]:
        """This thread's dead letters, newest first."""
        query = (
            select(dead_letters)
            .where(dead_letters.c.thread == self.thread)
            .order_by(dead_letters.c.id.desc())
            .limit(limit)
        )
        with self.db.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            DeadLetter(
                id=r.id,
                thread=r.thread,
                item_key=r.item_key,
                error=r.error,
                payload=json.loads(r.payload),
                failed_at=r.failed_at,
            )
            for r in rows
        ]


class Backoff:
    """Delays between retries against an unreachable store: ``first``, doubling, at
    most ``most`` seconds; :meth:`reset` after a success."""

    def __init__(self, first: float, most: float = 30.0) -> None:
        self.first = first
        self.most = most
        self.failures = 0

    def next(self) -> float:
        self.failures += 1
        return float(min(self.most, self.first * 2 ** (self.failures - 1)))

    def reset(self) -> None:
        self.failures = 0
