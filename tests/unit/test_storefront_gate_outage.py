"""A Redis that stays down never lets a storefront key past its limit on one worker.

Batched counting (api/sharedlimits.py) admits requests before Redis has counted
them. When the push fails, those requests must still count in the worker's memory:
each retry of Redis (every ``redis_retry_seconds``) must not admit a fresh limit's
worth of requests.
"""

from __future__ import annotations

import pytest
from limits.errors import StorageError
from limits.storage import MemoryStorage

from shelfwise.access.keys import Principal
from shelfwise.api.storefront import StorefrontGate
from shelfwise.errors import RateLimited


class DownStorage(MemoryStorage):
    """A shared store that refuses every write, like an unreachable Redis."""

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        raise StorageError(ConnectionError("redis is down"))

    def check(self) -> bool:
        return False


def _admitted(gate: StorefrontGate, principal: Principal, n: int) -> int:
    ok = 0
    for _ in range(n):
        try:
            gate.admit(principal, None, None)
            ok += 1
        except RateLimited:
            pass
    return ok


@pytest.mark.parametrize("retry_seconds", [0.0, 3600.0])
def test_requests_admitted_before_a_failed_push_still_count(retry_seconds: float) -> None:
    gate = StorefrontGate(
        "3/hour", "1000/hour", DownStorage(), retry_seconds=retry_seconds, sync_seconds=3600
    )
    principal = Principal(key_id="k1", name="shop-web", roles=frozenset({"storefront"}))
    try:
        assert _admitted(gate, principal, 5) == 3  # counted in the batch, not pushed yet
        assert gate.batched is not None
        for _ in range(4):  # every push fails; Redis is retried before each round
            gate.batched._sync_or_report()
            assert _admitted(gate, principal, 5) == 0
        assert gate.backend == ("memory (redis down)" if retry_seconds else "redis")
    finally:
        gate.close()


class ComingBack(MemoryStorage):
    """A shared store that is down until ``down`` is cleared."""

    down = True

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        if self.down:
            raise StorageError(ConnectionError("redis is down"))
        return super().incr(key, expiry, amount)

    def check(self) -> bool:
        return not self.down


def test_an_idle_worker_notices_redis_is_back() -> None:
    shared = ComingBack()
    gate = StorefrontGate("3/hour", "1000/hour", shared, retry_seconds=0.0, sync_seconds=3600)
    principal = Principal(key_id="k1", name="shop-web", roles=frozenset({"storefront"}))
    try:
        assert _admitted(gate, principal, 3) == 3
        assert gate.batched is not None
        gate.batched._sync_or_report()  # the push fails: counted here instead
        gate.batched._sync_or_report()  # idle, still down
        assert gate._degraded
        shared.down = False
        gate.batched._sync_or_report()  # idle: Redis answers again
        assert not gate._degraded
        # Redis never took the three, so its window is fresh: the limit is Redis's again.
        assert _admitted(gate, principal, 5) == 3
        gate.batched._sync_or_report()
        assert shared.get("LIMITER/key/k1/3/1/hour") == 3
    finally:
        gate.close()
