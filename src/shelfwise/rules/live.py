"""The rulebook a worker serves with: reloaded when the store's version moves.

Every call to :meth:`LiveRulebook.current` compares the loaded version with the
store's (``max(rule_audit.seq)``, one index lookup), so a change made through
any worker, the CLI or another machine applies to the next request. With Redis
configured, writers also publish the version under ``<prefix>:rules:version``;
workers read that key instead and still ask the store at most every
``STORE_RECHECK_SECONDS`` (a writer without Redis, or a lost publish, is caught
there).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import redis

from shelfwise.catalog import CatalogSnapshot
from shelfwise.rules.masks import CatalogMasks
from shelfwise.rules.rulebook import Rulebook
from shelfwise.rules.store import RuleStore

STORE_RECHECK_SECONDS = 1.0


class RedisVersion:
    """The rulebook version key in Redis (a broadcast that costs one GET to read).

    After a failure Redis is left alone for ``retry_seconds``: with Redis
    unreachable (or hanging) only one request per interval pays the timeout."""

    def __init__(self, url: str, prefix: str, retry_seconds: float = 5.0) -> None:
        self.client: Any = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.key = f"{prefix}:rules:version"
        self.retry_seconds = retry_seconds
        self._retry_at = 0.0

    def _down(self) -> bool:
        return time.monotonic() < self._retry_at

    def _failed(self) -> None:
        self._retry_at = time.monotonic() + self.retry_seconds

    def publish(self, version: int) -> None:
        # On failure the store stays the truth; readers re-check it every second.
        if self._down():
            return
        try:
            self.client.set(self.key, version)
        except redis.RedisError:
            self._failed()

    def read(self) -> int | None:
        if self._down():
            return None
        try:
            got = self.client.get(self.key)
        except redis.RedisError:
            self._failed()
            return None
        return int(got) if got is not None else None

    def close(self) -> None:
        self.client.close()


class LiveRulebook:
    def __init__(
        self,
        store: RuleStore,
        snapshot: CatalogSnapshot,
        redis_version: RedisVersion | None = None,
    ) -> None:
        self.store = store
        self.snapshot = snapshot
        self.redis_version = redis_version
        self.masks = CatalogMasks(snapshot)
        self._book: Rulebook | None = None
        self._lock = threading.Lock()
        self._store_checked = 0.0
        self.reloads = 0

    def current(self) -> Rulebook:
        """The rulebook at the store's current version (reloaded when it moved)."""
        book = self._book
        now = time.monotonic()
        if (
            book is not None
            and self.redis_version is not None
            and now - self._store_checked < STORE_RECHECK_SECONDS
        ):
            published = self.redis_version.read()
            if published is not None and published <= book.version:
                return book
        self._store_checked = now
        version = self.store.version()
        if book is not None and book.version == version:
            return book
        with self._lock:
            if self._book is None or self._book.version != version:
                loaded, rules = self.store.snapshot()
                self._book = Rulebook(rules, self.snapshot, version=loaded, masks=self.masks)
                self.reloads += 1
            return self._book
