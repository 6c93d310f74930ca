"""What a browser's key may do: its origins (CORS) and its rate limits.

A ``storefront`` key sits in a web page's source, so anyone can read it. It may ask
for slates (``GET``/``POST /v1/recommendations``) and post events (``POST
/v1/events``), nothing else (api/auth.py). On top of its role:

- **Origins.** A request that carries an ``Origin`` header must come from one of
  the key's origins (``*``: any); otherwise 403 ``origin_not_allowed``. A request
  without one (a server, curl) is not a browser's cross-site request and passes.
  CORS (:class:`KeyedCors`, the one CORS implementation, FastAPI's routes and the
  hot path alike) admits the setting ``cors_origins`` and every origin a usable
  storefront key names: a preflight shows no key, so it cannot be per key; the
  request after it is checked against its own key here.
- **Rate limits** (the ``limits`` package, fixed windows): per key
  (``storefront_rate_limit``, or the key's own ``rate_limit``) and per client IP
  address (``storefront_ip_rate_limit``), counted in Redis when ``redis_url`` is set
  (every worker and machine together; in batches every
  ``storefront_limit_sync_seconds``, api/sharedlimits.py, so that no request waits
  on Redis), else in the worker's memory. Over a limit:
  429 ``rate_limited`` with ``Retry-After`` (seconds). When Redis fails, the worker
  counts in its own memory for ``redis_retry_seconds``, then tries Redis again: a
  lost Redis loosens the limits to per worker, it never refuses traffic. Requests a
  failed batch could not push count in that memory too, and it is consulted until
  Redis answers, so a retry never hands a key a fresh limit.

Behind a proxy the client address is the proxy's unless uvicorn is told to trust
its ``X-Forwarded-For`` (``FORWARDED_ALLOW_IPS``; docs/security.md).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Collection
from functools import lru_cache

from limits import RateLimitItem
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import FixedWindowRateLimiter
from redis import RedisError
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from shelfwise.access import Principal
from shelfwise.api.sharedlimits import BatchedWindows
from shelfwise.config import Settings, parse_rate_limit
from shelfwise.errors import Forbidden, RateLimited

log = logging.getLogger("shelfwise.api.storefront")

CORS_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
CORS_HEADERS = ("X-API-Key", "Authorization", "Content-Type", "X-Request-ID", "X-Customer-Token")
CORS_EXPOSED = ("Retry-After", "X-Request-ID")


class KeyedCors(CORSMiddleware):
    """Starlette's CORS, whose allowed origins are asked of ``origins()`` at each
    request (keys come and go at run time), and which steps aside at once for a
    request without an ``Origin`` header (a server's: the hot path's usual caller)."""

    def __init__(self, app: ASGIApp, origins: Callable[[], Collection[str]]) -> None:
        super().__init__(
            app,
            allow_origins=(),
            allow_methods=CORS_METHODS,
            allow_headers=CORS_HEADERS,
            expose_headers=CORS_EXPOSED,
        )
        self.origins = origins

    def is_allowed_origin(self, origin: str) -> bool:
        allowed = self.origins()
        return origin in allowed or "*" in allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for key, _ in scope["headers"]:
                if key == b"origin":
                    break
            else:
                await self.app(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


@lru_cache(maxsize=256)
def _limit(text: str) -> RateLimitItem:
    return parse_rate_limit(text)


class StorefrontGate:
    """Checks a storefront key's origin and counts its requests (see the module doc)."""

    def __init__(
        self,
        key_limit: str,
        ip_limit: str,
        shared: Storage | None = None,
        retry_seconds: float = 5.0,
        sync_seconds: float = 0.0,
    ) -> None:
        self.key_limit = key_limit
        self.ip_limit = _limit(ip_limit)
        self.local = FixedWindowRateLimiter(MemoryStorage())
        self.shared = FixedWindowRateLimiter(shared) if shared is not None else None
        # Counted in Redis in batches every ``sync_seconds`` (0: at every request).
        self.batched = (
            BatchedWindows(shared, sync_seconds, self._lost, self._back, self._count_here)
            if shared is not None and sync_seconds > 0
            else None
        )
        self.retry_seconds = retry_seconds
        self._retry_at = 0.0
        self._degraded = False

    @classmethod
    def from_settings(cls, settings: Settings) -> StorefrontGate:
        shared: Storage | None = None
        if settings.redis_url:
            shared = RedisStorage(
                settings.redis_url,
                key_prefix=f"{settings.redis_prefix}:ratelimit",
                socket_timeout=0.5,
                socket_connect_timeout=0.5,
            )
        return cls(
            settings.storefront_rate_limit,
            settings.storefront_ip_rate_limit,
            shared,
            settings.redis_retry_seconds,
            settings.storefront_limit_sync_seconds,
        )

    @property
    def backend(self) -> str:
        if self.shared is None:
            return "memory"
        return "memory (redis down)" if time.monotonic() < self._retry_at else "redis"

    def admit(self, principal: Principal, origin: str | None, client: str | None) -> None:
        """Raise 403 ``origin_not_allowed`` or 429 ``rate_limited``; else count the request."""
        if origin is not None and origin not in principal.origins and "*" not in principal.origins:
            raise Forbidden(
                f"this storefront key may not be used from {origin[:100]!r}",
                code="origin_not_allowed",
            )
        key_limit = _limit(principal.rate_limit or self.key_limit)
        self._hit(key_limit, "key", principal.key_id)
        if client is not None:
            self._hit(self.ip_limit, "ip", client)

    def _hit(self, limit: RateLimitItem, *ids: str) -> None:
        shared = self.shared is not None and time.monotonic() >= self._retry_at
        if shared and self.batched is not None:
            if self._degraded and not self.local.test(limit, *ids):
                # Trying Redis again after a loss: what this worker admitted while it
                # was away still counts until Redis answers.
                raise _refusal(limit, ids[0], self.local.get_window_stats(limit, *ids).reset_time)
            allowed, end = self.batched.hit(limit, *ids)
            if not allowed:
                raise _refusal(limit, ids[0], end)
            return
        limiter = self.shared if shared and self.shared is not None else self.local
        try:
            allowed = limiter.hit(limit, *ids)
            if limiter is self.shared:
                self._back()
        except (RedisError, StorageError) as e:  # Redis lost: count locally a while
            if limiter is self.local:
                raise
            self._lost(e)
            limiter = self.local
            allowed = limiter.hit(limit, *ids)
        if not allowed:
            raise _refusal(limit, ids[0], limiter.get_window_stats(limit, *ids).reset_time)

    def _back(self) -> None:
        if self._degraded:
            log.warning("rate limits: Redis is back")
            self._degraded = False

    def _count_here(self, key: str, amount: int, seconds: int) -> None:
        """Count ``amount`` requests of ``key`` in this worker's memory (what a failed
        batch could not push to Redis)."""
        self.local.storage.incr(key, seconds, amount)

    def _lost(self, e: Exception) -> None:
        """Redis failed: count in this worker's memory for ``retry_seconds``."""
        if not self._degraded:
            log.warning("rate limits: Redis unreachable (%s); counting per worker", e)
            self._degraded = True
        self._retry_at = time.monotonic() + self.retry_seconds

    def close(self) -> None:
        if self.batched is not None:
            self.batched.close()

    def reset(self) -> None:
        """Forget every count (tests)."""
        for limiter in (self.local, self.shared):
            if limiter is not None:
                limiter.storage.reset()


def _refusal(limit: RateLimitItem, who: str, window_end: float) -> RateLimited:
    retry_after = max(1, math.ceil(window_end - time.time()))
    whom = "this key" if who == "key" else "this address"
    return RateLimited(
        f"more than {limit} for {whom}; retry in {retry_after} s", retry_after=retry_after
    )


def client_of(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None
