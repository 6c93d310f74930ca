"""Rolling-origin backtest on UCI Online Retail: the served pipeline against tuned peers.

    .venv/bin/python benchmarks/backtest.py [--origins 4] [--every-days 28] [--jobs N] [--db PATH]
        [--on-validation] [--placements FILE]

The same run as ``shelfwise evaluate --backtest N``: origins at London
midnight, 14-day test windows each with its own 14-day validation window
before it, the peers (item-kNN K, ALS factors / regularisation, EASE lambda)
and shelfwise's blend tuned on that validation window, the rank stage (three
learned-ranker designs or the blend ranker) chosen on it, the chosen ranker
trained on decision times before the origin; the ``new`` protocol's lists from
the placement as a new-items shelf, its ranker chosen on the window's new-items
requests (the same designs trained on all-items requests or on both kinds, or
its blend). Prints the pooled and per-origin
NDCG@10 ratios of the served pipeline to the best peer with their paired
bootstrap intervals, and the wall and CPU time of the whole backtest (the
import of the data set into a SQLite file is setup, not measured). The origins
run in ``--jobs`` worker processes (default: the cores available), one origin
at a time each, the latest first, one BLAS thread each; the figures are those
of one process.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import date, timedelta
from pathlib import Path

from online_retail_store import online_retail  # this folder is on sys.path when run as a script
from shelfwise.evaluation.backtest import (
    NEW_ITEMS_CHOICES,
    RANKER_CHOICES,
    backtest,
    default_origins,
    midnight,
    served_factory,
)
from shelfwise.evaluation.backtest_report import markdown
from shelfwise.runtime import Runtime
from shelfwise.serving.placements import parse_placements
from shelfwise.training.reader import read_log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--db",
        type=Path,
        help="A SQLite file to keep the imported data set in for the next run of this "
        "checkout (default: a fresh import into a temporary file every run).",
    )
    parser.add_argument("--origins", type=int, default=4)
    parser.add_argument("--every-days", type=int, default=28)
    parser.add_argument("--origin", type=date.fromisoformat, action="append", default=[])
    parser.add_argument(
        "--on-validation",
        action="store_true",
        help="Score each origin's validation window (origins one window earlier): for design.",
    )
    parser.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="Every ranker design's refit averages this many draws (RankerTrainingConfig."
        "seeds; default: the designs' own).",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="Every ranker design's draws offset by this (RankerTrainingConfig.seed): "
        "another draw of the same designs.",
    )
    parser.add_argument(
        "--choice-windows",
        type=int,
        default=None,
        help="The choice among ranker designs scores them on this many inner validation "
        "windows, by the mean (RankerTrainingConfig.choice_windows; default: one).",
    )
    parser.add_argument(
        "--placements",
        type=Path,
        default=None,
        help="Serve the home placement of this placements file (default: the shipped "
        "one): a placement setting measured before it is shipped.",
    )
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="Worker processes for the origins (default: the cores available; 1: serial).",
    )
    parser.add_argument("--json", type=Path, help="Also write the full result here.")
    parser.add_argument("--md", type=Path, help="Also write the markdown report here.")
    args = parser.parse_args()
    with online_retail(args.db) as runtime:
        run(args, runtime)


def run(args: argparse.Namespace, runtime: Runtime) -> None:
    log = read_log(runtime.db, items=list(runtime.snapshot.ids))
    origins = [midnight(d) for d in args.origin] or default_origins(
        log.end, args.origins, 14, args.every_days
    )
    if args.on_validation:
        origins = [midnight(o.date() - timedelta(days=14)) for o in origins]
    given = (("seeds", args.seeds), ("seed", args.seed), ("choice_windows", args.choice_windows))
    designs = {k: v for k, v in given if v is not None}
    home = None
    if args.placements is not None:
        home = parse_placements(args.placements.read_text(), str(args.placements)).get("home")
    served = served_factory(
        placement=home,
        choices=[c.model_copy(update=designs) for c in RANKER_CHOICES],
        new_items_choices=[c.model_copy(update=designs) for c in NEW_ITEMS_CHOICES],
    )
    started = time.perf_counter()
    result = backtest(
        log,
        origins,
        products=list(runtime.snapshot.products),
        ks=(10,),
        resamples=args.resamples,
        served=served,
        jobs=args.jobs,
        step=lambda name: print(
            f"  [{time.perf_counter() - started:6.0f} s, load {os.getloadavg()[0]:4.1f}] {name}",
            flush=True,
        ),
    )
    print(
        f"backtest of {len(origins)} origins in {result.seconds:.0f} s wall, "
        f"{result.cpu_seconds:.0f} s CPU (every process and thread), "
        f"{result.notes['jobs']} worker process(es), load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}, nproc {os.cpu_count()}"
    )
    report = markdown(result)
    print(report)
    if args.md:
        args.md.write_text(report)
    if args.json:
        args.json.write_text(json.dumps(result.as_dict(), indent=2))


if __name__ == "__main__":
    main()
