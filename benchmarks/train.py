"""``shelfwise train`` on UCI Online Retail: each step's wall and CPU time, and the request path.

Usage: ``.venv/bin/python benchmarks/train.py [--db PATH]``. The data set is
imported into a SQLite file (a fresh temporary one, or ``--db`` kept for
the next run of this checkout; the import is setup, not measured).
Baselines in the same process: the peer EASE and implicit-ALS fits on the same interactions (training), and a plain
``scores.argsort()`` over the catalog (request path).
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
import timeit
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from online_retail_store import online_retail  # this folder is on sys.path when run as a script
from shelfwise.candidates.base import RecContext
from shelfwise.evaluation.baselines import EASE, ImplicitALS
from shelfwise.runtime import Runtime
from shelfwise.training.job import train
from shelfwise.training.reader import read_log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--db",
        type=Path,
        help="A SQLite file to keep the imported data set in for the next run of this "
        "checkout (default: a fresh import into a temporary file every run).",
    )
    args = parser.parse_args()
    models = Path(tempfile.mkdtemp(prefix="shelfwise-models-"))
    with online_retail(args.db, model_dir=models) as runtime:
        run(runtime)


def run(runtime: Runtime) -> None:
    stamps: list[tuple[str, float, float]] = []

    def step(name: str) -> None:
        stamps.append((name, time.perf_counter(), time.process_time()))

    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = train(runtime, step=step)
    wall1, cpu1 = time.perf_counter(), time.process_time()
    stamps.append(("end", wall1, cpu1))
    print(f"{'step':<22}{'wall s':>9}{'cpu s':>9}")
    for (name, w, c), (_, w2, c2) in itertools.pairwise(stamps):
        print(f"{name:<22}{w2 - w:>9.2f}{c2 - c:>9.2f}")
    print(f"{'total train':<22}{wall1 - wall0:>9.2f}{cpu1 - cpu0:>9.2f}")
    print(f"counts {result.bundle.info.counts}")
    print(f"guard {result.bundle.info.metrics}")

    log = read_log(runtime.db, items=list(runtime.snapshot.ids))
    for peer in (EASE(), ImplicitALS()):
        w, c = time.perf_counter(), time.process_time()
        peer.fit(log)
        pw, pc = time.perf_counter() - w, time.process_time() - c
        print(
            f"peer {peer.name:<16}{pw:>9.2f}{pc:>9.2f}  train/peer wall {(wall1 - wall0) / pw:.1f}x"
        )

    artifacts = result.bundle.artifacts
    sources = artifacts.sources()
    blend = artifacts.blend()
    now = datetime.fromtimestamp(log.end, UTC)
    people = list(artifacts.people[:200])
    scores = np.random.default_rng(0).random(len(artifacts.items))
    base = timeit.timeit(lambda: scores.argsort()[-200:], number=2000) / 2000
    print(f"\nrequest path (person with history, depth 200), baseline argsort {base * 1e6:.0f} us")
    ctxs = [RecContext("home", now, person_id=p) for p in people]
    for name, source in [*sources.items(), ("blend (home, k=10)", None)]:
        if source is None:
            took = timeit.timeit(lambda: [blend.propose(c, 10) for c in ctxs], number=3)
        else:
            took = timeit.timeit(lambda s=source: [s.propose(c, 200) for c in ctxs], number=3)
        per = took / (3 * len(ctxs))
        print(f"  {name:<20}{per * 1e6:>8.0f} us  {per / base:>5.1f}x argsort")


if __name__ == "__main__":
    main()
