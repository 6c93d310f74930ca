"""The full pipeline (sources -> learned ranker) against the baselines on UCI Online Retail.

    .venv/bin/python benchmarks/rank_quality.py [--db PATH] [--no-tune]

The same evaluation as ``shelfwise evaluate --ranker`` (cutoff 2011-11-25,
test to the end of the data, people with a purchase on both sides), in one
run: every baseline, shelfwise's candidate blend and the ranked pipeline.
Reports NDCG@10 and revenue-weighted recall@10 per protocol, and the ranked
pipeline's NDCG@10 as a ratio to the best baseline of the same run. The data
set is imported into a SQLite file (a fresh temporary one, or ``--db`` kept
for the next run of this checkout; setup, not measured).
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from pathlib import Path

from online_retail_store import online_retail  # this folder is on sys.path when run as a script
from shelfwise.evaluation import compare
from shelfwise.runtime import Runtime
from shelfwise.training.reader import read_log

CUTOFF = datetime(2011, 11, 25, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--db",
        type=Path,
        help="A SQLite file to keep the imported data set in for the next run of this "
        "checkout (default: a fresh import into a temporary file every run).",
    )
    parser.add_argument("--no-tune", action="store_true", help="Skip the blend tuning.")
    parser.add_argument("--json", type=Path, help="Also write the full result here.")
    args = parser.parse_args()
    with online_retail(args.db) as runtime:
        run(args, runtime)


def run(args: argparse.Namespace, runtime: Runtime) -> None:
    log = read_log(runtime.db, items=list(runtime.snapshot.ids))
    started = time.perf_counter()
    result = compare(
        log,
        CUTOFF,
        products=list(runtime.snapshot.products),
        ks=(10,),
        tune=not args.no_tune,
        with_ranker=True,
        step=lambda name: print(f"  {name}", flush=True),
    )
    print(f"evaluated in {time.perf_counter() - started:.0f} s; people {result.people}")
    print(f"{'model':<20}{'ndcg all':>10}{'ndcg new':>10}{'rev.rec all':>13}{'rev.rec new':>13}")
    for m in result.models:
        row = [m.metrics[p]["10"][k] for k in ("ndcg", "revenue_recall") for p in ("all", "new")]
        print(f"{m.name:<20}{row[0]:>10.4f}{row[1]:>10.4f}{row[2]:>13.4f}{row[3]:>13.4f}")
    for protocol in ("all", "new"):
        name, best = result.best_baseline(protocol, 10)
        ranked = result.metric("shelfwise+ranker", protocol, 10, "ndcg")
        print(
            f"{protocol}: ranker {ranked:.4f} vs best baseline {name} {best:.4f} = {ranked / best:.3f}x"
        )
    if args.json:
        args.json.write_text(json.dumps(result.as_dict(), indent=2))


if __name__ == "__main__":
    main()
