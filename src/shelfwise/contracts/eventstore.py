"""The append-only event store: idempotent by ``event_id``, one transaction per batch.

``append`` returns only after the batch is committed, so a caller that
acknowledges what ``append`` reported stored never acknowledges a lost event.
Validation, verdicts and quarantine sit above this (``contracts.ingest``).

A row of ``events`` holds the event's common fields in columns and, in
``payload``, only the fields that have no column (``product_id``, ``lines``,
``page_type``, ``experiment_id``...): storing them twice made every row about
twice as wide for nothing. :meth:`EventStore.load` (or :func:`stored_event`
on a row) gives back the whole event. Rows written before revision 0014 carry
the whole event in ``payload``; they read back the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Connection, func, select

if TYPE_CHECKING:
    import psycopg

from shelfwise.contracts.events import Event, parse_event
from shelfwise.store.engine import Database
from shelfwise.store.tables import events
from shelfwise.store.types import utcnow

_CHUNK = 900  # below SQLite's bound-parameter limit for an IN list


# Taken as they are from the model (``_COPIED``), then the three values the store makes.
_COPIED = (
    "event_id",
    "type",
    "schema_version",
    "anonymous_id",
    "customer_id",
    "session_id",
    "device_id",
    "platform",
    "os",
    "browser",
    "app_version",
    "placement",
    "rec_id",
    "order_id",
)
_EVENT_COLS = (*_COPIED, "occurred_at", "received_at", "payload")
# The event fields ``events`` keeps in their own columns; ``payload`` holds the others.
COLUMN_FIELDS = frozenset(_EVENT_COLS) - {"received_at", "payload"}


def stored_event(row: Mapping[Any, Any]) -> Event:
    """The whole event a row of ``events`` holds: its columns plus ``payload``.

    ``occurred_at`` comes back in UTC (the instant the sender gave)."""
    raw: dict[str, Any] = {k: row[k] for k in COLUMN_FIELDS if row[k] is not None}
    raw.update(row["payload"])
    return parse_event(raw)


_ITEM_COLS = (
    "event_id",
    "line",
    "type",
    "occurred_at",
    "anonymous_id",
    "customer_id",
    "session_id",
    "product_id",
    "quantity",
    "unit_price",
    "position",
    "placement",
    "rec_id",
)


_ZERO = timedelta(0)
_NOT_IN_PAYLOAD = set(COLUMN_FIELDS)


def _sqlite_time(value: datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime stores: naive UTC with microseconds."""
    if value.utcoffset() == _ZERO:  # the common case ("Z"): no conversion to pay for
        return value.isoformat(" ", "microseconds")[:26]
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _lines(e: Event) -> list[tuple[Any, ...]]:
    """``(product_id, quantity, unit_price, position, placement, rec_id)`` for each
    product the event is about, in line order (none for page views and logins)."""
    match e.type:
        case "product_view":
            return [(e.product_id, 1, e.price, None, e.placement, e.rec_id)]
        case "add_to_cart":
            return [(e.product_id, e.quantity, e.unit_price, None, e.placement, e.rec_id)]
        case "remove_from_cart":
            return [(e.product_id, e.quantity, None, None, None, None)]
        case "purchase":
            return [
                (ln.product_id, ln.quantity, ln.unit_price, None, None, ln.rec_id) for ln in e.lines
            ]
        case "return":
            return [(ln.product_id, ln.quantity, ln.unit_price, None, None, None) for ln in e.lines]
        case "rec_impression":
            return [(it.product_id, 1, None, it.position, e.placement, e.rec_id) for it in e.items]
        case "rec_click":
            return [(e.product_id, 1, None, e.position, e.placement, e.rec_id)]
        case _:
            return []


def _item_tuples(e: Event, at: object) -> list[tuple[Any, ...]]:
    """Rows for ``interactions`` in ``_ITEM_COLS`` order; ``at`` is ``occurred_at`` as
    the driver takes it."""
    head = (e.event_id, e.type, at, e.anonymous_id, e.customer_id, e.session_id)
    return [(head[0], i, *head[1:], *line) for i, line in enumerate(_lines(e))]


def interaction_rows(e: Event) -> list[dict[str, Any]]:
    """One ``interactions`` row per product the event is about, as a dict."""
    return [dict(zip(_ITEM_COLS, t, strict=True)) for t in _item_tuples(e, e.occurred_at)]


def _insert_sql(
    table: str, cols: tuple[str, ...], backend: str, json_col: str | None, tail: str = ""
) -> str:
    mark = "?" if backend == "sqlite" else "%s"
    values = [f"{mark}::jsonb" if c == json_col and backend != "sqlite" else mark for c in cols]
    return f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(values)}){tail}"


@dataclass
class Rows:
    """One batch as driver tuples; ``fresh[i]`` is False for the duplicates left out."""

    fresh: list[bool] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    items: list[tuple[Any, ...]] = field(default_factory=list)

    def keep(self, batch: Sequence[Event], ids: set[str]) -> Rows:
        """Only the rows of the events whose id is in ``ids`` (``batch`` as given to
        :meth:`EventStore.rows_of`)."""
        return Rows(
            [new and e.event_id in ids for new, e in zip(self.fresh, batch, strict=True)],
            [r for r in self.events if r[0] in ids],
            [r for r in self.items if r[0] in ids],
        )


class EventStore:
    """Writes go straight to the driver's ``executemany`` with pre-serialised values:
    the SQLAlchemy Core path costs several times more per row than the database does."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # SQLite: a row whose event_id is stored already is skipped, not an error
        # (see ``_append_sqlite``); any other constraint still fails loudly (OR IGNORE
        # would skip a NOT NULL violation too). PostgreSQL's COPY has no such clause.
        skip = " ON CONFLICT (event_id) DO NOTHING" if db.backend == "sqlite" else ""
        self._events_sql = _insert_sql("events", _EVENT_COLS, db.backend, "payload", skip)
        self._items_sql = _insert_sql("interactions", _ITEM_COLS, db.backend, None)

    def append(self, batch: Sequence[Event]) -> list[bool]:
        """Store the events not stored before; ``result[i]`` is False for a duplicate."""
        with self.db.engine.begin() as conn:
            return self.append_in(conn, batch)

    def append_in(self, conn: Connection, batch: Sequence[Event]) -> list[bool]:
        """As :meth:`append`, inside the caller's transaction."""
        if self.db.backend == "sqlite":
            return self._append_sqlite(conn, batch)
        rows = self.rows_of(batch, self._stored_ids(conn, [e.event_id for e in batch]))
        self.write_in(conn, rows)
        return rows.fresh

    def _append_sqlite(self, conn: Connection, batch: Sequence[Event]) -> list[bool]:
        """Insert first, look up only when something was already there.

        ``ON CONFLICT (event_id) DO NOTHING`` skips the events already stored, and
        its row count says
        whether there were any; almost always there were none, and the primary-key
        lookup before every batch (a probe per id) is saved. When some were skipped,
        the rows just written are the ``written`` with the highest rowids: SQLite
        gives a new row max(rowid) + 1, and this transaction holds the write lock
        from its first insert, so no other writer's rows can be among them. Only
        those events' interaction rows are then written."""
        rows = self.rows_of(batch, set())
        if not rows.events:
            return rows.fresh
        written = conn.exec_driver_sql(self._events_sql, rows.events).rowcount
        if written != len(rows.events):
            newest = "SELECT event_id FROM events ORDER BY rowid DESC LIMIT ?"
            rows = rows.keep(batch, {r[0] for r in conn.exec_driver_sql(newest, (written,))})
        self._insert(conn, "interactions", _ITEM_COLS, rows.items, self._items_sql)
        return rows.fresh

    def rows_of(self, batch: Sequence[Event], known: set[str]) -> Rows:
        """The driver-ready rows of the events whose id is not in ``known`` (nor earlier
        in ``batch``); ``known`` grows by the ids taken."""
        sqlite = self.db.backend == "sqlite"
        now = utcnow()
        received: str | datetime = _sqlite_time(now) if sqlite else now
        out = Rows()
        for e in batch:
            if e.event_id in known:
                out.fresh.append(False)
                continue
            known.add(e.event_id)
            out.fresh.append(True)
            # (no cache by time: hashing an aware datetime costs about as much as this)
            at = _sqlite_time(e.occurred_at) if sqlite else e.occurred_at
            # the model's own fields straight from its __dict__ in one C-level pass
            # (``get``: placement, rec_id and order_id exist on some types only),
            # then the payload: model_dump_json without its Python wrapper, of the
            # fields that have no column
            payload = (
                type(e)
                .__pydantic_serializer__.to_json(e, exclude=_NOT_IN_PAYLOAD, exclude_none=True)
                .decode()
            )
            out.events.append((*map(e.__dict__.get, _COPIED), at, received, payload))
            out.items.extend(_item_tuples(e, at))
        return out

    def write_in(self, conn: Connection, rows: Rows) -> None:
        """Insert prepared rows in the caller's transaction (the whole database cost)."""
        self._insert(conn, "events", _EVENT_COLS, rows.events, self._events_sql)
        self._insert(conn, "interactions", _ITEM_COLS, rows.items, self._items_sql)

    def _stored_ids(self, conn: Connection, ids: list[str]) -> set[str]:
        """PostgreSQL: the ids of ``ids`` already in the store, with one ``= ANY(%s)``
        array parameter (psycopg parses a query's placeholders in Python each time, so
        an ``IN`` of 900 of them cost more than the lookup). SQLite needs no lookup
        (see ``_append_sqlite``)."""
        sql = "SELECT event_id FROM events WHERE event_id = ANY(%s)"
        return {r[0] for r in conn.exec_driver_sql(sql, (ids,))}

    def _insert(
        self,
        conn: Connection,
        table: str,
        cols: tuple[str, ...],
        rows: list[tuple[Any, ...]],
        single_sql: str,
    ) -> None:
        """SQLite: ``executemany`` of one prepared statement. PostgreSQL: ``COPY`` in
        the caller's transaction — per-row statements and large multi-row ``VALUES``
        both measured several times slower (psycopg re-parses a long query each time)."""
        if not rows:
            return
        if self.db.backend == "sqlite":
            conn.exec_driver_sql(single_sql, rows)
            return
        raw = cast("psycopg.Connection[Any]", conn.connection.driver_connection)
        with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def load(self, event_ids: Sequence[str]) -> list[Event]:
        """The stored events among ``event_ids``, whole, in the order asked."""
        found: dict[str, Event] = {}
        with self.db.engine.connect() as conn:
            for start in range(0, len(event_ids), _CHUNK):
                chunk = list(event_ids[start : start + _CHUNK])
                for row in conn.execute(select(events).where(events.c.event_id.in_(chunk))):
                    found[row.event_id] = stored_event(row._mapping)
        return [found[i] for i in event_ids if i in found]

    def count(self) -> int:
        with self.db.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(events)).scalar_one())
