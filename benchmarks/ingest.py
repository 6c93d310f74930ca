"""Ingestion throughput: file import and HTTP batches of 500, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/ingest.py [--events 100000] [--no-postgres]

Two baselines in the same process, on the same events:

* *naive*: the straightforward path — ``json.loads`` and ``parse_event`` per
  event, rows as dicts through SQLAlchemy Core ``executemany`` — so the ratio
  shows what batch validation and driver-level inserts buy;
* *database floor*: only the inserts and commits of the same driver tuples in
  the same batches (built outside the clock), so ``file / floor`` shows what
  shelfwise's own work (decode, validation, verdicts, quarantine, identity,
  sessions) costs on top of what the database must do anyway.

HTTP figures are also given as a share of the in-process rate.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shelfwise.config import Settings, load_settings  # noqa: E402
from shelfwise.contracts import parse_event  # noqa: E402
from shelfwise.contracts.eventstore import interaction_rows  # noqa: E402
from shelfwise.contracts.files import read_batches  # noqa: E402
from shelfwise.contracts.ingest import BATCH_ADAPTER  # noqa: E402
from shelfwise.runtime import Runtime  # noqa: E402
from shelfwise.store.tables import events, interactions  # noqa: E402
from shelfwise.store.types import utcnow  # noqa: E402

PG_URL = os.environ.get("TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
TYPES = ("product_view", "product_view", "product_view", "add_to_cart", "page_view")


def make_events(n: int, prefix: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(n):
        t = TYPES[i % len(TYPES)]
        e: dict[str, Any] = {
            "type": t,
            "event_id": f"{prefix}{i}",
            "occurred_at": f"2026-11-01T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}Z",
            "anonymous_id": f"a{i % 20_000}",
            "session_id": f"s{i // 7}",
            "platform": "web" if i % 3 else "mobile_web",
            "browser": "Chrome" if i % 4 else "Safari",
        }
        if t == "page_view":
            e["page_type"] = "category"
        else:
            e["product_id"] = f"P{i % 5_000}"
        if t == "add_to_cart":
            e["quantity"] = 1 + i % 3
        out.append(e)
    return out


def baseline_import(rt: Runtime, lines: list[bytes]) -> None:
    """The naive path: per-event decode and validation, Core inserts of dict rows."""
    for start in range(0, len(lines), 5_000):
        parsed = [parse_event(json.loads(line)) for line in lines[start : start + 5_000]]
        now = utcnow()
        rows = [
            {
                "event_id": e.event_id,
                "type": e.type,
                "schema_version": e.schema_version,
                "occurred_at": e.occurred_at,
                "received_at": now,
                "anonymous_id": e.anonymous_id,
                "customer_id": e.customer_id,
                "session_id": e.session_id,
                "device_id": e.device_id,
                "platform": e.platform,
                "os": e.os,
                "browser": e.browser,
                "app_version": e.app_version,
                "placement": getattr(e, "placement", None),
                "rec_id": getattr(e, "rec_id", None),
                "order_id": None,
                "payload": e.model_dump(mode="json", exclude_none=True),
            }
            for e in parsed
        ]
        items = [r for e in parsed for r in interaction_rows(e)]
        with rt.db.engine.begin() as conn:
            conn.execute(events.insert(), rows)
            if items:
                conn.execute(interactions.insert(), items)


def floor_seconds(rt: Runtime, evs: list[dict[str, Any]]) -> float:
    """The database's own share: the same rows, already validated and built as driver
    tuples outside the clock, inserted with the store's ``executemany``/``COPY`` in the
    same batches and committed. ``file / floor`` is what shelfwise costs on top."""
    store = rt.ingestor.store
    prepared = []
    for start in range(0, len(evs), 5_000):
        batch = BATCH_ADAPTER.validate_python(evs[start : start + 5_000])
        prepared.append(store.rows_of(batch, set()))
    t0 = time.perf_counter()
    for rows in prepared:
        with rt.db.engine.begin() as conn:
            store.write_in(conn, rows)
    return time.perf_counter() - t0


def file_import(rt: Runtime, path: Path) -> None:
    """What ``shelfwise events import FILE`` does (batches of 5,000)."""
    ingestor = rt.bulk_ingestor()
    for batch in read_batches(path, "jsonl", 5_000):
        ingestor.ingest(batch.raws, source="file", unreadable=batch.unreadable)


@contextmanager
def fresh(backend: str, tmp: Path) -> Iterator[Settings]:
    if backend == "sqlite":
        yield load_settings(database_url=f"sqlite:///{tmp / f'{uuid.uuid4().hex}.db'}")
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    yield load_settings(database_url=PG_URL, database_schema=schema)
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def timed(fn: Any, *args: Any) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def http_rate(settings: Settings, evs: list[dict[str, Any]], batch: int = 500) -> float:
    sys.path.insert(0, str(ROOT / "tests"))
    from tests.e2e.server import running_server, settings_env

    key = "bench-ingest-key"
    env = settings_env(
        settings,
        SHELFWISE_API_KEYS=json.dumps([{"name": "bench", "secret": key, "roles": ["ingest"]}]),
    )
    env["SHELFWISE_LOG_LEVEL"] = "warning"
    bodies = [json.dumps(evs[i : i + batch]).encode() for i in range(0, len(evs), batch)]
    with running_server(env, cwd=ROOT) as base, httpx.Client(timeout=60) as client:
        hdrs = {"X-API-Key": key, "Content-Type": "application/json"}
        t0 = time.perf_counter()
        for body in bodies:
            r = client.post(f"{base}/v1/events", content=body, headers=hdrs)
            assert r.status_code == 200 and r.json()["accepted"] == batch, r.text[:300]
        return len(evs) / (time.perf_counter() - t0)


def pg_reachable() -> bool:
    try:
        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
        return True
    except sa.exc.OperationalError:
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--http-events", type=int, default=50_000)
    ap.add_argument("--no-postgres", action="store_true")
    ap.add_argument("--only", choices=["sqlite", "postgresql"], default=None)
    args = ap.parse_args()
    backends = ["sqlite"] + ([] if args.no_postgres or not pg_reachable() else ["postgresql"])
    if args.only:
        backends = [args.only]
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        evs = make_events(args.events, "f")
        path = tmp / "events.jsonl"
        path.write_bytes(b"\n".join(json.dumps(e).encode() for e in evs) + b"\n")
        lines = path.read_bytes().splitlines()
        for backend in backends:
            with fresh(backend, tmp) as s:
                rt = Runtime.open(s, load=False)
                base = args.events / timed(baseline_import, rt, lines)
                rt.close()
            with fresh(backend, tmp) as s:
                rt = Runtime.open(s, load=False)
                floor = args.events / floor_seconds(rt, evs)
                rt.close()
            with fresh(backend, tmp) as s:
                rt = Runtime.open(s, load=False)
                ours = args.events / timed(file_import, rt, path)
                rt.close()
            with fresh(backend, tmp) as s:
                Runtime.open(s, load=False).close()
                http = http_rate(s, make_events(args.http_events, "h"))
            results[backend] = {
                "baseline_file": base,
                "insert_floor": floor,
                "file": ours,
                "http_500": http,
            }
            print(
                f"{backend:10s} file import {ours:9,.0f} ev/s  (naive baseline {base:8,.0f} ev/s, "
                f"x{ours / base:.2f}; database floor {floor:8,.0f} ev/s, file at "
                f"{ours / floor:.0%} of it)   HTTP batches of 500 {http:8,.0f} ev/s "
                f"({http / ours:.0%} of in-process)",
                flush=True,
            )
    print(f"load average while measuring: {os.getloadavg()}")
    print(json.dumps({k: {m: round(v) for m, v in r.items()} for k, r in results.items()}))


if __name__ == "__main__":
    main()
