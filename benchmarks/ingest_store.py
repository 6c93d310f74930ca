"""The event store's write path alone: what each schema choice costs SQLite.

    .venv/bin/python benchmarks/ingest_store.py [--events 100000] [--reps 3]

The same validated batches of 5,000 events (those of ``benchmarks/ingest.py``)
are turned into driver rows once, outside the clock; each variant then inserts
them into a fresh SQLite file (WAL, ``synchronous=NORMAL``, 64 MB cache) with
one ``executemany`` per table and one commit per batch, and the variants are
interleaved ``--reps`` times so that they share the machine's load. Rates are
reported as ratios (of the medians, and of the best runs, the least disturbed
by other work) to *before*: the schema and payload of revision 0013
(every index full, the whole event in ``payload``, 4 KiB pages).
"""

from __future__ import annotations

import argparse
import gc
import os
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from ingest import make_events  # noqa: E402
from shelfwise.config import load_settings  # noqa: E402
from shelfwise.contracts.eventstore import _EVENT_COLS, _ITEM_COLS, EventStore  # noqa: E402
from shelfwise.contracts.ingest import BATCH_ADAPTER  # noqa: E402
from shelfwise.runtime import Runtime  # noqa: E402
from shelfwise.store.engine import connect  # noqa: E402

PARTIAL = ("ix_events_customer_id", "ix_events_rec_id")


@dataclass(frozen=True)
class Variant:
    name: str
    partial: bool = True  # customer_id / rec_id indexes hold only non-null values
    compact: bool = True  # payload without the fields that have columns
    page_size: int = 16384
    lookup: bool = False  # a primary-key lookup of already-stored ids before each batch
    without_rowid: bool = False


VARIANTS = (
    Variant("before (0013)", partial=False, compact=False, page_size=4096, lookup=True),
    Variant("+ partial indexes", compact=False, page_size=4096, lookup=True),
    Variant("+ compact payload", page_size=4096, lookup=True),
    Variant("+ 16 KiB pages", lookup=True),
    Variant("+ skip on conflict, no lookup (now)"),
    Variant("now + WITHOUT ROWID tables", without_rowid=True),
)


def schema(tmp: Path) -> list[str]:
    """The events/interactions DDL as the migrations create it."""
    rt = Runtime.open(load_settings(database_url=f"sqlite:///{tmp / 'schema.db'}"), load=False)
    rt.close()
    with sqlite3.connect(tmp / "schema.db") as conn:
        q = "SELECT sql FROM sqlite_master WHERE tbl_name IN ('events', 'interactions')"
        return [s for (s,) in conn.execute(q) if s]


def ddl_of(v: Variant, ddl: list[str]) -> list[str]:
    out = []
    for stmt in ddl:
        if not v.partial and any(name in stmt for name in PARTIAL):
            stmt = stmt.split(" WHERE ")[0]
        if v.without_rowid and stmt.startswith("CREATE TABLE"):
            stmt += " WITHOUT ROWID"
        out.append(stmt)
    return out


def prepared(n: int, compact: bool) -> list[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """Driver rows per batch; ``compact=False`` puts the whole event in ``payload``."""
    store = EventStore(connect(load_settings(database_url="sqlite://")))
    evs = make_events(n, "f")
    out = []
    for start in range(0, n, 5_000):
        batch = BATCH_ADAPTER.validate_python(evs[start : start + 5_000])
        rows = store.rows_of(batch, set())
        if not compact:
            whole = [e.model_dump_json(exclude_none=True) for e in batch]
            rows.events = [(*r[:-1], p) for r, p in zip(rows.events, whole, strict=True)]
        out.append((rows.events, rows.items))
    return out


def run(v: Variant, ddl: list[str], batches: list[Any], path: Path) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in (
        f"page_size={v.page_size}",
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "cache_size=-65536",
    ):
        conn.execute(f"PRAGMA {pragma}")
    for stmt in ddl_of(v, ddl):
        conn.execute(stmt)
    ev_sql, it_sql = (
        f"INSERT INTO {t} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        for t, cols in (("events", _EVENT_COLS), ("interactions", _ITEM_COLS))
    )
    n = sum(len(ev) for ev, _ in batches)
    gc.disable()
    t0 = time.perf_counter()
    for ev, items in batches:
        conn.execute("BEGIN")
        if v.lookup:
            ids = [r[0] for r in ev]
            for s in range(0, len(ids), 900):
                chunk = ids[s : s + 900]
                marks = ", ".join("?" * len(chunk))
                conn.execute(f"SELECT event_id FROM events WHERE event_id IN ({marks})", chunk)
        skip = "" if v.lookup else " ON CONFLICT (event_id) DO NOTHING"
        conn.executemany(ev_sql + skip, ev)
        conn.executemany(it_sql, items)
        conn.execute("COMMIT")
    rate = n / (time.perf_counter() - t0)
    gc.enable()
    conn.close()
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    rates: dict[str, list[float]] = {v.name: [] for v in VARIANTS}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ddl = schema(tmp)
        rows: dict[bool, Any] = {c: prepared(args.events, c) for c in (False, True)}
        for rep in range(args.reps):
            for v in VARIANTS:
                path = tmp / f"{rep}-{len(sizes)}-{v.page_size}.db"
                rates[v.name].append(run(v, ddl, rows[v.compact], path))
                wal = path.with_name(path.name + "-wal")
                sizes[v.name] = path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
                for f in (path, wal, path.with_name(path.name + "-shm")):
                    f.unlink(missing_ok=True)
    before = median(rates[VARIANTS[0].name])
    best = max(rates[VARIANTS[0].name])
    print(
        f"{'variant':30s} {'median ev/s':>12s} {'x before':>9s} {'best x before':>14s} {'MB':>6s}"
    )
    for v in VARIANTS:
        m = median(rates[v.name])
        b = max(rates[v.name]) / best
        print(f"{v.name:30s} {m:12,.0f} {m / before:9.2f} {b:14.2f} {sizes[v.name] / 1e6:6.1f}")
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
