"""Fixed windows counted in Redis in batches, so that a request never waits on Redis.

Counting every request in Redis costs one round trip per counter on the event loop
(benchmarks/storefront_gate.py: a storefront slate then cost ~5x a ``read`` one).
Here a request is judged against what this worker last read from Redis plus what
it has counted since; a thread pushes the worker's counts every ``every`` seconds
(one ``INCRBY`` per window key, through the ``limits`` storage, the same keys as
``limits``' own fixed-window strategy) and reads the totals back. The price: each
worker may admit what other workers counted in the last interval on top of the
limit: a worker reads a key's total back each time it pushes its own counts for
it, so past a limit it admits at most what it receives for that key in one
interval (``every`` seconds), against a window of a minute or more.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from limits import RateLimitItem
from limits.errors import StorageError
from limits.storage import Storage
from redis import RedisError

log = logging.getLogger("shelfwise.api.storefront")

PRUNE_SECONDS = 10.0


class BatchedWindows:
    def __init__(
        self,
        storage: Storage,
        every: float,
        on_failure: Callable[[Exception], None],
        on_success: Callable[[], None] = lambda: None,
        spill: Callable[[str, int, int], None] = lambda key, amount, seconds: None,
    ) -> None:
        self.storage = storage
        self.every = every
        self.on_failure = on_failure
        self.on_success = on_success
        self.spill = spill  # where counts Redis could not take go: (key, amount, window s)
        self._lock = threading.Lock()
        self._syncing = threading.Lock()  # one push at a time: a count is pushed once
        self._pending: dict[str, tuple[int, int]] = {}  # key -> (counted here, window seconds)
        self._known: dict[str, tuple[int, float]] = {}  # key -> (total in Redis, window end)
        self._pruned = time.monotonic()
        self._stop = threading.Event()
        self._down = False  # the last push failed: an idle tick asks Redis if it is back
        self._thread: threading.Thread | None = None

    def hit(self, limit: RateLimitItem, *ids: str) -> tuple[bool, float]:
        """Count one request if it is within ``limit``: (admitted, the window's end, epoch s)."""
        key = limit.key_for(*ids)
        now = time.time()
        with self._lock:
            total, end = self._known.get(key, (0, 0.0))
            if now >= end:  # a new window (Redis's key expired too, or is new)
                total, end = 0, now + limit.get_expiry()
                self._known[key] = (0, end)
            counted, _ = self._pending.get(key, (0, 0))
            if total + counted >= limit.amount:
                return False, end
            self._pending[key] = (counted + 1, limit.get_expiry())
        if self._thread is None:
            self._start()
        return True, end

    def sync(self) -> None:
        """Push this worker's counts and read the totals back (raises when Redis fails)."""
        with self._syncing:
            self._push()

    def _push(self) -> None:
        with self._lock:
            batch = dict(self._pending)
        for key, (amount, seconds) in batch.items():
            total = self.storage.incr(key, seconds, amount)
            end = self.storage.get_expiry(key)
            with self._lock:
                counted, window = self._pending.get(key, (amount, seconds))
                if counted > amount:
                    self._pending[key] = (counted - amount, window)
                else:
                    self._pending.pop(key, None)
                self._known[key] = (total, end)
        if time.monotonic() - self._pruned > PRUNE_SECONDS:
            now = time.time()
            with self._lock:
                self._known = {k: v for k, v in self._known.items() if v[1] > now}
            self._pruned = time.monotonic()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(
                target=self._run, name="shelfwise-rate-limits", daemon=True
            )
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._sync_or_report()

    def _sync_or_report(self) -> None:
        try:
            with self._lock:
                idle = not self._pending
            if idle and not self._down:
                return  # nothing to push, and nothing to learn about Redis
            if idle and not self.storage.check():  # down before: is it back?
                raise StorageError(ConnectionError("Redis does not answer"))
            self.sync()
            self._down = False
            self.on_success()
        except (RedisError, StorageError) as e:
            with self._lock:
                unpushed, self._pending = self._pending, {}
            # Requests admitted but never counted in Redis are counted in this worker's
            # memory instead, so the per-worker limit that holds while Redis is away
            # includes them (a retry that fails again never admits them twice).
            for key, (amount, seconds) in unpushed.items():
                self.spill(key, amount, seconds)
            self._down = True
            self.on_failure(e)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._sync_or_report()
