"""Session next-item on DIGINETICA and basket completion on Online Retail, against peers.

    .venv/bin/python benchmarks/peer_protocols.py [--only session|basket] [--resamples 1000]

The same runs as ``shelfwise evaluate --protocol session-next-item`` and
``--protocol basket-completion``:

* DIGINETICA (``sample_train-item-views.csv`` with ``product-categories.csv``
  and ``train-purchases.csv``): test sessions starting in the last 14 days of
  the views (2016-05-19..2016-06-01), validation the 28 days before (the sample
  is thin: 14 days hold ~50 validation sessions); HR@20 and MRR@20 of
  shelfwise's session slates against popularity, item-kNN co-view, SKNN and
  V-SKNN.
* Online Retail: test baskets bought from the reference cutoff 2011-11-25 to
  the end of the data (15 days), validation the 14 days before; NDCG@10 of
  shelfwise's cart slate for the basket without one hidden item, against
  co-occurrence, item-kNN, EASE and popularity.

Each import into a SQLite file is setup, not measured. Prints both reports
(markdown) and the wall and CPU seconds of each protocol.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from online_retail_store import shared_data  # this folder is on sys.path when run as a script
from shelfwise.config import load_settings
from shelfwise.contracts.eventstore import EventStore
from shelfwise.evaluation.basket_protocol import basket_completion
from shelfwise.evaluation.protocol_report import ProtocolResult, Spec, markdown
from shelfwise.evaluation.session_protocol import session_next_item
from shelfwise.importers import load_source
from shelfwise.importers.registry import read_dataset
from shelfwise.runtime import Runtime
from shelfwise.training.reader import read_log


def run(name: str, db: Path, spec: Spec) -> ProtocolResult:
    runtime = Runtime.open(load_settings(database_url=f"sqlite:///{db}"))
    try:
        if EventStore(runtime.db).count() == 0:
            print(f"importing {name} (setup, not measured) ...", flush=True)
            data = read_dataset(name, None, shared_data())
            load_source(data, runtime.catalog, runtime.ingestor)
            runtime.snapshot.load()
        log = read_log(runtime.db, items=list(runtime.snapshot.ids))
        started, cpu = time.perf_counter(), time.process_time()
        protocol = session_next_item if name == "diginetica" else basket_completion
        spec = replace(
            spec, products=list(runtime.snapshot.products), ranking=runtime.settings.ranking
        )
        result = protocol(log, runtime.snapshot, list(runtime.placements), spec)
        print(
            f"{result.protocol}: {time.perf_counter() - started:.0f} s wall, "
            f"{time.process_time() - cpu:.0f} s CPU",
            flush=True,
        )
        return result
    finally:
        runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--only", choices=("session", "basket"))
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--json", type=Path, help="Also write both results here.")
    args = parser.parse_args()
    started = time.perf_counter()

    def step(what: str) -> None:
        print(f"  [{time.perf_counter() - started:6.0f} s] {what}", flush=True)

    results = []
    if args.only != "basket":
        spec = Spec(window_days=14, validation_days=28, k=20, resamples=args.resamples, step=step)
        results.append(run("diginetica", args.dir / "shelfwise-peers-diginetica.db", spec))
    if args.only != "session":
        spec = Spec(
            datetime(2011, 11, 25, tzinfo=UTC),
            window_days=15,
            validation_days=14,
            k=10,
            resamples=args.resamples,
            step=step,
        )
        results.append(run("online_retail", args.dir / "shelfwise-peers-or.db", spec))
    for result in results:
        print(markdown(result))
    if args.json:
        args.json.write_text(json.dumps([r.as_dict() for r in results], indent=2, default=str))


if __name__ == "__main__":
    main()
