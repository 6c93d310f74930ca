"""Live session state: the recent events of a shopping session, visible to the next request.

In-process by default; in Redis when ``settings.redis_url`` is set, so that any
worker sees the session. When Redis fails, :class:`SessionState` falls back to
the in-process store (the ``shelfwise_session_backend_degraded`` gauge says so)
and tries Redis again after ``settings.redis_retry_seconds``; events written
during the outage are merged back into what the session shows.

Records hold external product ids: dense indices are local to a worker's
snapshot, so they are mapped at read time by the pipeline.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import orjson
import redis

from shelfwise.config import Settings
from shelfwise.contracts.events import Event

log = logging.getLogger("shelfwise.serving.session")

SESSION_TYPES = frozenset(
    {"product_view", "add_to_cart", "remove_from_cart", "purchase", "rec_click"}
)


@dataclass(frozen=True, slots=True)
class SessionRecord:
    product_id: str
    type: str
    at: float  # epoch seconds, from the event's occurred_at


def records_of(event: Event) -> list[SessionRecord]:
    """The session records an accepted event contributes (none for page views, logins...)."""
    if event.type not in SESSION_TYPES:
        return []
    at = event.occurred_at.timestamp()
    if event.type == "purchase":
        return [SessionRecord(line.product_id, "purchase", at) for line in event.lines]
    product_id: str = getattr(event, "product_id")  # noqa: B009 - every other session type has one
    return [SessionRecord(product_id, event.type, at)]


class SessionBackend(Protocol):
    name: str

    def append(self, session_id: str, records: Sequence[SessionRecord]) -> None: ...

    def read(self, session_id: str) -> list[SessionRecord]: ...

    def clear(self, session_id: str) -> None: ...


class MemorySessions:
    """Sessions in this process: bounded per session, expired after the TTL, LRU-capped."""

    name = "memory"

    def __init__(self, max_events: int, ttl_seconds: float, max_sessions: int = 200_000) -> None:
        self.max_events = max_events
        self.ttl = ttl_seconds
        self.max_sessions = max_sessions
        self._data: OrderedDict[str, tuple[float, deque[SessionRecord]]] = OrderedDict()
        self._lock = threading.Lock()

    def append(self, session_id: str, records: Sequence[SessionRecord]) -> None:
        now = time.time()
        with self._lock:
            entry = self._data.get(session_id)
            if entry is None or entry[0] < now:
                events: deque[SessionRecord] = deque(maxlen=self.max_events)
            else:
                events = entry[1]
            events.extend(records)
            self._data[session_id] = (now + self.ttl, events)
            self._data.move_to_end(session_id)
            while len(self._data) > self.max_sessions:
                self._data.popitem(last=False)

    def read(self, session_id: str) -> list[SessionRecord]:
        entry = self._data.get(session_id)
        if entry is None or entry[0] < time.time():
            return []
        return list(entry[1])

    def clear(self, session_id: str) -> None:
        with self._lock:
            self._data.pop(session_id, None)

    def pop(self, session_id: str) -> list[SessionRecord]:
        with self._lock:
            entry = self._data.pop(session_id, None)
        return list(entry[1]) if entry else []

    def session_ids(self) -> list[str]:
        return list(self._data)


def _encode(r: SessionRecord) -> bytes:
    return orjson.dumps([r.product_id, r.type, r.at])


def _decode(raw: bytes) -> SessionRecord:
    pid, kind, at = orjson.loads(raw)
    return SessionRecord(str(pid), str(kind), float(at))


class RedisSessions:
    """Sessions in Redis: one capped list per session with a sliding TTL."""

    name = "redis"

    def __init__(self, client: redis.Redis, prefix: str, max_events: int, ttl_seconds: int) -> None:
        self.client = client
        self.prefix = f"{prefix}:session:"
        self.max_events = max_events
        self.ttl = ttl_seconds

    @classmethod
    def from_url(cls, url: str, prefix: str, max_events: int, ttl_seconds: int) -> RedisSessions:
        client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        return cls(client, prefix, max_events, ttl_seconds)

    def append(self, session_id: str, records: Sequence[SessionRecord]) -> None:
        if not records:
            return
        key = self.prefix + session_id
        pipe = self.client.pipeline(transaction=True)
        pipe.rpush(key, *[_encode(r) for r in records])
        pipe.ltrim(key, -self.max_events, -1)
        pipe.expire(key, self.ttl)
        pipe.execute()

    def read(self, session_id: str) -> list[SessionRecord]:
        raw: list[bytes] = self.client.lrange(self.prefix + session_id, 0, -1)  # type: ignore[assignment]
        return [_decode(r) for r in raw]

    def clear(self, session_id: str) -> None:
        self.client.delete(self.prefix + session_id)


class SessionState:
    """The session store the request path uses: Redis when configured, else in-process.

    ``on_degraded(True/False)`` is called when Redis is lost and when it is back.
    """

    def __init__(
        self,
        primary: SessionBackend | None,
        local: MemorySessions,
        retry_seconds: float = 5.0,
        on_degraded: Callable[[bool], None] | None = None,
    ) -> None:
        self.primary = primary
        self.local = local
        self.retry_seconds = retry_seconds
        self.on_degraded = on_degraded
        self.degraded = False
        self._retry_at = 0.0
        self._stranded: set[str] = set()  # sessions written locally while Redis was down

    @classmethod
    def from_settings(
        cls, settings: Settings, on_degraded: Callable[[bool], None] | None = None
    ) -> SessionState:
        local = MemorySessions(settings.session_max_events, settings.session_ttl_seconds)
        primary = None
        if settings.redis_url:
            primary = RedisSessions.from_url(
                settings.redis_url,
                settings.redis_prefix,
                settings.session_max_events,
                settings.session_ttl_seconds,
            )
        return cls(primary, local, settings.redis_retry_seconds, on_degraded)

    @property
    def backend(self) -> str:
        if self.primary is None:
            return self.local.name
        return f"{self.local.name} (redis down)" if self.degraded else self.primary.name

    def _use_primary(self) -> SessionBackend | None:
        if self.primary is None:
            return None
        if self.degraded and time.monotonic() < self._retry_at:
            return None
        return self.primary

    def _failed(self, e: Exception) -> None:
        self._retry_at = time.monotonic() + self.retry_seconds
        if not self.degraded:
            log.warning("session store: Redis unreachable (%s); using in-process state", e)
            self.degraded = True
            if self.on_degraded:
                self.on_degraded(True)

    def _recovered(self) -> None:
        if self.degraded:
            log.warning("session store: Redis is back")
            self.degraded = False
            if self.on_degraded:
                self.on_degraded(False)

    def append(self, session_id: str, records: Sequence[SessionRecord]) -> None:
        if not records:
            return
        primary = self._use_primary()
        if primary is not None:
            try:
                primary.append(session_id, records)
                self._recovered()
                return
            except redis.RedisError as e:
                self._failed(e)
        self.local.append(session_id, records)
        if self.primary is not None:
            self._stranded.add(session_id)

    def read(self, session_id: str) -> list[SessionRecord]:
        primary = self._use_primary()
        if primary is None:
            return self.local.read(session_id)
        try:
            got = primary.read(session_id)
        except redis.RedisError as e:
            self._failed(e)
            return self.local.read(session_id)
        self._recovered()
        if session_id in self._stranded:
            got = self._merge_back(primary, session_id, got)
        return got

    def _merge_back(
        self, primary: SessionBackend, session_id: str, got: list[SessionRecord]
    ) -> list[SessionRecord]:
        """Move what was written locally during an outage into Redis, in time order."""
        stranded = self.local.pop(session_id)
        self._stranded.discard(session_id)
        merged = sorted([*got, *stranded], key=lambda r: r.at)
        try:
            primary.clear(session_id)
            primary.append(session_id, merged)
        except redis.RedisError as e:
            self._failed(e)
        return merged[-self.local.max_events :]

    def observe(self, events: Iterable[Event]) -> int:
        """Record accepted events into their sessions; returns how many records were kept."""
        by_session: dict[str, list[SessionRecord]] = {}
        for e in events:
            if e.session_id:
                by_session.setdefault(e.session_id, []).extend(records_of(e))
        for sid, records in by_session.items():
            self.append(sid, records)
        return sum(len(r) for r in by_session.values())

    def clear(self, session_id: str) -> None:
        self.local.clear(session_id)
        primary = self._use_primary()
        if primary is not None:
            try:
                primary.clear(session_id)
            except redis.RedisError as e:
                self._failed(e)
