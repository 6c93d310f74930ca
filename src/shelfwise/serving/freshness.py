"""The catalog's change clock, read cheaply on every request.

A stock or price change must reach the very next request on every worker. The
snapshot already knows how to apply changes after a sequence number; this asks
the store for the newest sequence number with one raw query on a connection
kept for the purpose (tens of microseconds, against a few hundred through the
ORM layer), and the snapshot refreshes only when there is something new.
With the store down it answers ``None`` and retries after ``retry_seconds``,
so the request path keeps serving from memory.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from shelfwise.catalog import CatalogSnapshot
from shelfwise.contracts.identity import IdentityVersion
from shelfwise.store.engine import Database

log = logging.getLogger("shelfwise.serving.freshness")

# The catalog's change clock, the rulebook's (its audit log) and the identity
# graph's (its merge log, the privacy erasures, which delete links, and the unmerges,
# which mark one undone), in one round trip; each is a max over a primary key.
LATEST_SEQ = (
    "SELECT (SELECT max(seq) FROM product_changes), (SELECT max(seq) FROM rule_audit),"
    " (SELECT max(id) FROM identity_links), (SELECT max(seq) FROM erasures),"
    " (SELECT max(seq) FROM identity_unmerges)"
)


class ChangeClock:
    def __init__(self, db: Database, retry_seconds: float = 2.0) -> None:
        self.db = db
        self.retry_seconds = retry_seconds
        self._conn: Any = None
        self.rules_seq: int | None = None  # as of the last read
        # The identity graph's version as of the last read, one object so that a request
        # never pairs one read's merge-log row with another read's erasure.
        self.identity: IdentityVersion | None = None
        self._retry_at = 0.0
        self._lock = threading.Lock()

    def _connect(self) -> Any:
        raw = self.db.engine.raw_connection()
        conn = raw.driver_connection
        raw.detach()  # ours for good: never handed back to the pool mid-use
        assert conn is not None
        if self.db.backend == "postgresql":
            conn.autocommit = True  # no transaction left idle between requests
        return conn

    def latest(self) -> int | None:
        """The newest catalog change sequence number, or None when the store is unreachable."""
        got = self.read()
        return None if got is None else got[0]

    def read(self) -> tuple[int, int] | None:
        """The newest (catalog change, rule change) sequence numbers; None when unreachable."""
        with self._lock:
            if self._conn is None:
                if time.monotonic() < self._retry_at:
                    return None
                try:
                    self._conn = self._connect()
                except Exception as e:  # any driver's connection error
                    self._lost(e)
                    return None
            try:
                cur = self._conn.cursor()
                cur.execute(LATEST_SEQ)
                row = cur.fetchone()
                cur.close()
            except Exception as e:  # any driver's error: treat the store as down
                self._lost(e)
                return None
            self.rules_seq = int(row[1] or 0)
            self.identity = IdentityVersion(int(row[2] or 0), int(row[3] or 0), int(row[4] or 0))
            return int(row[0] or 0), self.rules_seq

    def _lost(self, e: Exception) -> None:
        log.warning("catalog change clock: store unreachable (%s)", type(e).__name__)
        self.rules_seq = self.identity = None
        self._retry_at = time.monotonic() + self.retry_seconds
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # already broken
                log.debug("closing a broken connection failed", exc_info=True)
            self._conn = None

    def forked(self) -> None:
        """In a forked child: forget the parent's connection (never used nor closed
        here: it is the parent's); the next read opens the child's own."""
        self._conn = None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def refresh_if_changed(snapshot: CatalogSnapshot, clock: ChangeClock) -> bool:
    """Bring the snapshot up to date when the store has newer changes.

    Returns False when the store is unreachable (the snapshot is served as is).
    """
    got = clock.read()
    if got is None:
        return False
    seq = got[0]
    if seq > snapshot.seq:
        snapshot.refresh(force=True)
    else:
        snapshot.refreshed_at = time.time()
    return True
