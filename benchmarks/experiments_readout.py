"""How long an experiment readout takes, against a plain scan of the same rows.

Builds a synthetic store (``shelfwise.experiments.synthetic``) in a temporary
SQLite file, then times (a) the baseline: fetching every interaction row of the
readout window with SQLAlchemy Core, and (b) the full readout (exposures,
attribution, per-person metrics, every estimate of every cell). Reports the
ratio readout / scan and persons per second.

    .venv/bin/python benchmarks/experiments_readout.py [--persons 5000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from shelfwise.config import load_settings
from shelfwise.contracts.eventstore import EventStore
from shelfwise.experiments.report import readout
from shelfwise.experiments.synthetic import START, World
from shelfwise.runtime import Runtime
from shelfwise.store.tables import interactions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(database_url=f"sqlite:///{Path(tmp) / 'bench.db'}")
        runtime = Runtime.open(settings, load=False)
        try:
            world = World(persons=args.persons)
            runtime.catalog.upsert(world.catalog())
            e = runtime.experiments.create(world.spec())
            events = world.events(e)
            EventStore(runtime.db).append(events)
            at = START + timedelta(days=30)

            def scan() -> int:
                with runtime.db.engine.connect() as conn:
                    return len(conn.execute(select(interactions)).all())

            rows = scan()
            scans, reads = [], []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                scan()
                t1 = time.perf_counter()
                readout(runtime.db, e, at=at)
                t2 = time.perf_counter()
                scans.append(t1 - t0)
                reads.append(t2 - t1)
        finally:
            runtime.close()
    scan_s, read_s = statistics.median(scans), statistics.median(reads)
    print(f"persons {args.persons}, events {len(events)}, interaction rows {rows}")
    print(f"baseline scan   {scan_s * 1000:8.1f} ms")
    print(f"full readout    {read_s * 1000:8.1f} ms   ({read_s / scan_s:.1f}x the scan)")
    print(f"persons/second  {args.persons / read_s:8.0f}")


if __name__ == "__main__":
    main()
