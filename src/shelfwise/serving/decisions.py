"""The decision log: every served slate, written off the hot path, read back by rec_id.

``DecisionLog.record`` turns the slate into a row (its JSON columns encoded with
orjson, a few microseconds) and appends it to an in-memory queue; a background
thread writes the queue in batches every ``settings.decision_flush_seconds``
(and on ``close``) with the driver's own bulk path (SQLite multi-row ``INSERT``,
PostgreSQL ``COPY``). The writer thread shares the interpreter with the request
path: building rows there through SQLAlchemy (``asdict``, per-column bind
processing, ``json.dumps``) held the GIL long enough to stall requests — a
quarter of a served request's CPU in the profile.

Nothing stops the writer but ``close``. A batch the store refuses is written
again row by row, and a row it still refuses (a NUL PostgreSQL cannot hold, a
NOT NULL column left empty) goes to the ``dead_letters`` table and is counted
(``store.deadletters``); the slates around it are stored. When the store is
unreachable the rows wait and are retried after growing delays of at most
:data:`RETRY_MOST_SECONDS`, so the queue drains within that long of the store's
return; the queue is first in, first out, so the slates of an outage are written
before the ones served after it. Past ``settings.decision_queue_max`` pending
slates new ones are dropped and counted, so serving never blocks on the log.

What the writer did is on ``/metrics`` (:meth:`DecisionLog.progress`): slates
written, slates pending, and ``stored_through``, the last moment the queue was
empty: every slate served before it is stored (or set aside). Readers (``get``,
``recent``) are what "why was this shown?", monitoring and the rules' impact
preview use.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

import numpy as np
import numpy.typing as npt
import orjson
from sqlalchemy import Connection, Text, select
from sqlalchemy import cast as sql_cast

from shelfwise.config import Settings
from shelfwise.monitoring.decisions import ServedCounts, ServedSlate
from shelfwise.store.deadletters import Backoff, DeadLetters, OnFailure
from shelfwise.store.engine import Database
from shelfwise.store.failures import classify, unreachable
from shelfwise.store.tables import decisions

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger("shelfwise.serving.decisions")

WRITER = "decision-writer"  # the thread's name and its label in /metrics
# The longest wait between two tries at an unreachable store: one connection attempt
# each, cheap for the store, and the drain after an outage starts this soon.
RETRY_MOST_SECONDS = 2.0
# While the store stays unreachable, the warning is repeated this often (not every try).
WARN_EVERY_SECONDS = 30.0

# (slates written since the last call, slates pending, stored_through as Unix time)
OnProgress = Callable[[int, int, float], None]

JSON_COLUMNS = frozenset({"request", "items", "trace"})
_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


@dataclass(frozen=True)
class Decision:
    """One served slate as stored. ``items`` hold external ids, scores and reasons."""

    rec_id: str
    served_at: datetime
    placement: str
    mode: str  # "model" | "degraded"
    request: dict[str, Any]
    items: list[dict[str, Any]]
    person_id: str | None = None
    session_id: str | None = None
    experiment_id: str | None = None
    arm: str | None = None
    model_version: str | None = None
    rulebook_version: str | None = None
    trace: dict[str, Any] | None = None

    def as_row(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in COLUMNS}

    def as_tuple(self, sqlite: bool, items_json: bytes | None = None) -> tuple[Any, ...]:
        """The row in :data:`COLUMNS` order as the driver takes it: JSON columns as
        text, ``served_at`` as SQLite's stored text (naive UTC) or an aware datetime.
        ``items_json``: the items already encoded (a kept slate's), taken as they are."""
        out: list[Any] = []
        for f in COLUMNS:
            v = getattr(self, f)
            if f == "items" and items_json is not None:
                v = items_json.decode()
            elif f in JSON_COLUMNS:
                v = None if v is None else orjson.dumps(v, default=str, option=_JSON_OPTIONS)
                v = v if v is None else v.decode()
            elif f == "served_at":
                v = v.astimezone(UTC)
                v = v.replace(tzinfo=None).isoformat(" ", "microseconds") if sqlite else v
            out.append(v)
        return tuple(out)

    @classmethod
    def from_tuple(cls, row: tuple[Any, ...]) -> Decision:
        """A row as :meth:`as_tuple` made it (a pending one: not stored yet)."""
        got = dict(zip(COLUMNS, row, strict=True))
        for f in JSON_COLUMNS:
            if got[f] is not None:
                got[f] = orjson.loads(got[f])
        at = got["served_at"]
        if isinstance(at, str):
            got["served_at"] = datetime.fromisoformat(at).replace(tzinfo=UTC)
        return cls(**got)

    @classmethod
    def from_row(cls, row: Any) -> Decision:
        return cls(**dict(row._mapping))


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Decision))


SQLITE_ROWS_PER_INSERT = 999 // len(COLUMNS)  # within SQLite's oldest bound-parameter limit


class DecisionReader(Protocol):
    """What monitoring and the rules' impact preview read."""

    def get(self, rec_id: str) -> Decision | None: ...

    def recent(
        self, *, placement: str | None = None, since: datetime | None = None, limit: int = 1000
    ) -> list[Decision]: ...

    def recorded_requests(
        self, *, placement: str | None = None, since: datetime | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]: ...


RULE_ITEMS_PAGE = 1000  # item ids per rule decision GET /v1/decisions/{rec_id} returns by default
RULE_ITEMS_PAGE_MOST = 10_000  # the largest page it accepts


def page_rule_items(trace: dict[str, Any] | None, offset: int, limit: int) -> dict[str, Any] | None:
    """``trace`` with each rule decision's ``items`` cut to ``[offset, offset + limit)``.

    The log keeps every item a rule named (``count`` is their number); each decision
    gets ``items_offset`` and ``items_next``, the offset of the next page or None
    when this page reaches the end. The stored trace is left as it is."""
    if trace is None or not trace.get("rules"):
        return trace
    rules = []
    for r in trace["rules"]:
        items = r.get("items") or []
        end = offset + limit
        rules.append(
            {
                **r,
                "items": items[offset:end],
                "items_offset": offset,
                "items_next": end if end < len(items) else None,
            }
        )
    return {**trace, "rules": rules}


def recorded_request(d: Decision) -> dict[str, Any] | None:
    """A stored slate as a replayable request (``rules.replay.RecordedRequestIn``): the rule
    scope, the time, the viewed and cart items and the candidates before any rule.
    None when its trace was not kept (sampling)."""
    if d.trace is None or not d.trace.get("pool"):
        return None
    return {
        "placement": d.trace.get("rule_scope") or d.placement,
        "now": d.served_at.isoformat(),
        "context_items": list(d.request.get("item", [])),
        "cart_items": list(d.request.get("cart", [])),
        "candidates": [{"product_id": pid, "score": score} for pid, score in d.trace["pool"]],
    }


def keeps_trace(mode: Literal["full", "sampled", "none"], rate: float, rec_id: str) -> bool:
    """Whether a slate's trace is stored: deterministic per rec_id, so every worker agrees."""
    if mode == "full":
        return True
    if mode == "none":
        return False
    return zlib.crc32(rec_id.encode()) < rate * 2**32


class DecisionSink(Protocol):
    """Where the request path hands its served slates: the :class:`DecisionLog`, or
    a forked batch worker's :class:`HeldDecisions`."""

    def keeps_trace(self, rec_id: str) -> bool: ...

    def record(self, decision: Decision, items_json: bytes | None = None) -> None: ...


class HeldDecisions:
    """Decisions held in memory, not written: a forked batch worker's (it must not
    use the parent's writer thread or connections), made rows as the parent's
    :class:`DecisionLog` makes them (the encoding done in the worker), handed back
    to the parent, which records them. Keeps a trace exactly as the log would."""

    def __init__(self, log: DecisionLog) -> None:
        self.log = log  # the parent's, as it was at the fork: read, never written
        self.held: list[tuple[str, tuple[Any, ...]]] = []

    def keeps_trace(self, rec_id: str) -> bool:
        return self.log.keeps_trace(rec_id)

    def record(self, decision: Decision, items_json: bytes | None = None) -> None:
        self.held.append((decision.rec_id, self.log.row(decision, items_json)))

    def take(self) -> list[tuple[str, tuple[Any, ...]]]:
        """What was held since the last call."""
        held, self.held = self.held, []
        return held


class DecisionLog:
    def __init__(
        self,
        db: Database,
        *,
        trace_mode: Literal["full", "sampled", "none"] = "full",
        trace_rate: float = 0.1,
        flush_seconds: float = 0.2,
        batch_size: int = 500,
        queue_max: int = 50_000,
        on_drop: Callable[[int], None] | None = None,
        on_failure: OnFailure | None = None,
        on_progress: OnProgress | None = None,
    ) -> None:
        self.db = db
        self.trace_mode = trace_mode
        self.trace_rate = trace_rate
        self.flush_seconds = flush_seconds
        self.batch_size = batch_size
        self.queue_max = queue_max
        self.on_drop = on_drop
        self.dead_letters = DeadLetters(db, WRITER, on_failure)
        # Set by the Runtime: does a served product id still join the catalog?
        self.known_product: Callable[[str], bool] | None = None
        self.dropped = 0
        self.on_progress = on_progress
        self.written = 0  # slates stored by this log (not those set aside)
        # The last moment the queue was found empty (Unix time): every slate served
        # before it is stored or set aside. Empty at the start.
        self.stored_through = time.time()
        self._reported = 0  # ``written`` at the last on_progress call
        self._sqlite = db.backend == "sqlite"
        self._pending: deque[tuple[str, tuple[Any, ...]]] = deque()  # (rec_id, row)
        self._index: dict[str, tuple[Any, ...]] = {}  # rec_id -> its pending row
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._paused = False  # no writer while paused (:meth:`paused`)
        self.progress()

    @classmethod
    def from_settings(
        cls,
        db: Database,
        settings: Settings,
        on_drop: Callable[[int], None] | None = None,
        on_failure: OnFailure | None = None,
        on_progress: OnProgress | None = None,
    ) -> DecisionLog:
        return cls(
            db,
            trace_mode=settings.decision_trace,
            trace_rate=settings.decision_trace_sample_rate,
            flush_seconds=settings.decision_flush_seconds,
            batch_size=settings.decision_batch_size,
            queue_max=settings.decision_queue_max,
            on_drop=on_drop,
            on_failure=on_failure,
            on_progress=on_progress,
        )

    def keeps_trace(self, rec_id: str) -> bool:
        return keeps_trace(self.trace_mode, self.trace_rate, rec_id)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def record(self, decision: Decision, items_json: bytes | None = None) -> None:
        """Queue a slate for writing (never blocks on the store). ``items_json``: its
        items already encoded, written as they are (``decision.items`` is then unread)."""
        self.record_row(decision.rec_id, self.row(decision, items_json))

    def row(self, decision: Decision, items_json: bytes | None = None) -> tuple[Any, ...]:
        """``decision`` as this log's store takes it (:meth:`Decision.as_tuple`)."""
        return decision.as_tuple(self._sqlite, items_json)

    def record_row(self, rec_id: str, row: tuple[Any, ...]) -> None:
        """Queue a slate already made a row by :meth:`row` (a batch worker's)."""
        with self._lock:
            if len(self._pending) >= self.queue_max:
                self.dropped += 1
                if self.on_drop:
                    self.on_drop(1)
                return
            self._pending.append((rec_id, row))
            self._index[rec_id] = row
            if self._thread is None and not self._paused:
                self.start()
        if len(self._pending) >= self.batch_size:
            self._wake.set()

    def start(self) -> None:
        """Start the writer (the first ``record`` does; a server starts it up front so
        its progress on /metrics moves while no slate is served)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=WRITER, daemon=True)
            self._thread.start()

    def progress(self) -> None:
        """Hand what was written since the last call, the queue's length and
        ``stored_through`` to ``on_progress`` (the writer does, every round)."""
        if self.on_progress is not None:
            written = self.written
            self.on_progress(written - self._reported, self.pending, self.stored_through)
            self._reported = written

    def _run(self) -> None:
        # Nothing ends this loop but close(): flush() sets a refused row aside, an
        # unreachable store is waited out (growing delays, at most RETRY_MOST_SECONDS),
        # anything else is logged, counted and tried again.
        backoff = Backoff(max(self.flush_seconds, 0.5), most=RETRY_MOST_SECONDS)
        since = 0.0  # when the store was first found unreachable (monotonic), 0 = reachable
        warned = 0.0
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            try:
                self.flush()
            except Exception as e:
                kind = "unreachable" if unreachable(e) else "error"
                self.dead_letters.count(kind)
                delay = backoff.next()
                now = time.monotonic()
                if kind == "error":
                    log.exception("decision log: write failed; %d pending", self.pending)
                elif not since or now - warned >= WARN_EVERY_SECONDS:
                    since = since or now
                    warned = now
                    log.warning(
                        "decision log: store unavailable for %.0fs (%s); %d pending,"
                        " retried every %.1fs at most",
                        now - since,
                        type(e).__name__,
                        self.pending,
                        RETRY_MOST_SECONDS,
                    )
                self.progress()
                self._stop.wait(delay)
            else:
                if since:
                    log.info(
                        "decision log: store back after %.0fs; the queue is written",
                        time.monotonic() - since,
                    )
                    since = 0.0
                backoff.reset()
                self.progress()

    def flush(self) -> int:
        """Write every pending slate now; returns how many were written.

        A batch the store refuses is written again row by row: a row it still
        refuses goes to the dead letters (:meth:`DeadLetters.keep`) and leaves the
        queue; the others are stored. Only an unreachable store raises (its rows stay
        pending)."""
        written = 0
        with self._write_lock:
            while True:
                with self._lock:
                    n = min(self.batch_size, len(self._pending))
                    batch = [self._pending[i][1] for i in range(n)]
                    if not batch:
                        # Everything queued before this moment is stored or set aside.
                        self.stored_through = time.time()
                        return written
                try:
                    with self.db.engine.begin() as conn:
                        self._insert(conn, batch)
                except Exception as e:
                    if unreachable(e):
                        raise
                    written += self._row_by_row(n)
                    continue
                self._done(n, n)
                written += n

    def _row_by_row(self, n: int) -> int:
        """Write the first ``n`` pending rows one at a time (their batch failed)."""
        written = 0
        for _ in range(n):
            rec_id, row = self._pending[0]
            try:
                with self.db.engine.begin() as conn:
                    self._insert(conn, [row])
            except Exception as e:
                got = classify(e)
                if got is not None and got.kind == "unreachable":
                    raise
                if got is not None and got.constraint == "unique":
                    # rec_id is the only unique column: the row is stored already (a
                    # batch committed whose acknowledgement was lost), not a bad row.
                    log.info("decision log: %s was stored already", rec_id)
                else:
                    # Raises if the store went away meanwhile: the row stays queued.
                    self.dead_letters.keep(rec_id, dict(zip(COLUMNS, row, strict=False)), e)
                self._done(1, 0)
            else:
                self._done(1, 1)
                written += 1
        return written

    def _done(self, n: int, stored: int) -> None:
        """The first ``n`` pending rows are stored (``stored`` of them) or set aside:
        forget them."""
        with self._lock:
            self.written += stored
            for _ in range(n):
                rec_id, _ = self._pending.popleft()
                self._index.pop(rec_id, None)

    def _insert(self, conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        if self._sqlite:
            # Multi-row VALUES rather than ``executemany``: the driver releases and
            # retakes the GIL around every statement step, and each retake waits for
            # the request thread to give it up — per row, that ping-pong cost more CPU
            # than the inserts.
            one = f"({', '.join('?' * len(COLUMNS))})"
            for start in range(0, len(rows), SQLITE_ROWS_PER_INSERT):
                chunk = rows[start : start + SQLITE_ROWS_PER_INSERT]
                conn.exec_driver_sql(
                    f"INSERT INTO decisions ({', '.join(COLUMNS)}) VALUES "
                    + ", ".join([one] * len(chunk)),
                    tuple(v for row in chunk for v in row),
                )
            return
        raw = cast("psycopg.Connection[Any]", conn.connection.driver_connection)
        with (
            raw.cursor() as cur,
            cur.copy(f"COPY decisions ({', '.join(COLUMNS)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """The writer stopped (its round of writing done) and started again after.

        While a process forks, no thread of it may be inside the store's driver: a
        forked child inherits the driver's locks as they are, and one held by the
        writer at that moment would stay held in the child for good (SQLite's are
        global to the process). The slates recorded meanwhile wait in the queue."""
        thread = self._thread
        self._paused = True
        if thread is not None:
            self._stop.set()
            self._wake.set()
            thread.join()
            self._thread = None
            self._stop.clear()
        try:
            yield
        finally:
            self._paused = False
            if thread is not None or self.pending:
                self.start()

    def close(self) -> None:
        """Stop the writer and write what is pending (called at shutdown)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        try:
            self.flush()
        except Exception as e:  # only an unreachable store gets here
            log.error(
                "decision log: %d slates not written at shutdown (%s)",
                self.pending,
                type(e).__name__,
            )

    def get(self, rec_id: str) -> Decision | None:
        pending = self._index.get(rec_id)
        if pending is not None:
            return Decision.from_tuple(pending)
        with self.db.engine.connect() as conn:
            row = conn.execute(select(decisions).where(decisions.c.rec_id == rec_id)).one_or_none()
        return None if row is None else Decision.from_row(row)

    def recorded_requests(
        self, *, placement: str | None = None, since: datetime | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        """Recent slates with a kept trace, as requests the rules' impact preview replays."""
        got = (
            recorded_request(d) for d in self.recent(placement=placement, since=since, limit=limit)
        )
        return [r for r in got if r is not None]

    # --- what monitoring reads (shelfwise.monitoring.decisions.DecisionLogReader) ---

    def _window(self, start: datetime, end: datetime) -> list[Any]:
        self.flush_quietly()
        query = select(decisions.c.placement, decisions.c.mode, decisions.c["items"]).where(
            decisions.c.served_at >= start, decisions.c.served_at < end
        )
        with self.db.engine.connect() as conn:
            return list(conn.execute(query))

    def flush_quietly(self) -> None:
        try:
            self.flush()
        except Exception as e:  # the readers still answer from what is stored
            if not unreachable(e):
                raise
            log.warning("decision log: flush before a read failed (%s)", type(e).__name__)

    def served(self, start: datetime, end: datetime) -> dict[str, ServedCounts]:
        """Slates per placement in ``[start, end)``: how many fell back (a degraded
        slate, or any slot filled by a fallback source) and how many items still
        join the catalog (``known_product``, when set)."""
        out: dict[str, list[int]] = {}
        known = self.known_product
        for placement, mode, items in self._window(start, end):
            c = out.setdefault(placement, [0, 0, 0, 0])
            c[0] += 1
            c[1] += mode != "model" or any(
                r.get("fallback") for it in items for r in it.get("reasons", ())
            )
            c[2] += len(items)
            c[3] += sum(1 for it in items if known is None or known(it["product_id"]))
        return {p: ServedCounts(*c) for p, c in out.items()}

    def source_mix(self, start: datetime, end: datetime) -> dict[str, int]:
        """Items served per candidate source (the source of each item's first reason)."""
        mix: dict[str, int] = {}
        for _, _, items in self._window(start, end):
            for it in items:
                reasons = it.get("reasons") or [{}]
                source = str(reasons[0].get("source", "unknown"))
                mix[source] = mix.get(source, 0) + 1
        return mix

    def scores(self, start: datetime, end: datetime) -> npt.NDArray[np.float64]:
        """Ranker scores of the items served in ``[start, end)``."""
        return np.array(
            [
                float(it.get("score", 0.0))
                for _, _, items in self._window(start, end)
                for it in items
            ],
            dtype=np.float64,
        )

    def anchored(
        self, start: datetime, end: datetime, placements: Sequence[str], limit: int
    ) -> dict[str, list[ServedSlate]]:
        """Per placement, its newest ``limit`` slates in ``[start, end)`` that name a viewed
        product: the first ``item`` of the request, the items as served, and whether a
        person or a session was named (what coherence reads)."""
        self.flush_quietly()
        d = decisions.c
        out: dict[str, list[ServedSlate]] = {}
        # The JSON columns as text, decoded here (written by orjson, see ``as_tuple``): the
        # items are most of a row, and the stock decoder took ~45 µs of the ~100 µs a
        # slate cost.
        request, items = sql_cast(d.request, Text), sql_cast(d["items"], Text)
        with self.db.engine.connect() as conn:
            for placement in placements:
                query = (
                    select(request, items, d.person_id, d.session_id)
                    .where(d.placement == placement, d.served_at >= start, d.served_at < end)
                    .order_by(d.served_at.desc())
                    .limit(limit)
                )
                got = []
                for req_json, items_json, person, session in conn.execute(query):
                    viewed = orjson.loads(req_json).get("item")
                    if viewed:
                        personal = person is not None or session is not None
                        got.append(ServedSlate(str(viewed[0]), orjson.loads(items_json), personal))
                if got:
                    out[placement] = got
        return out

    def recent(
        self, *, placement: str | None = None, since: datetime | None = None, limit: int = 1000
    ) -> list[Decision]:
        """Stored slates, newest first (what a replay of recent requests reads)."""
        query = select(decisions).order_by(decisions.c.served_at.desc()).limit(limit)
        if placement is not None:
            query = query.where(decisions.c.placement == placement)
        if since is not None:
            query = query.where(decisions.c.served_at >= since)
        with self.db.engine.connect() as conn:
            return [Decision.from_row(r) for r in conn.execute(query)]
