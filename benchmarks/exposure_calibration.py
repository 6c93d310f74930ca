"""The exposure cap's calibration on the learned store: every clock on its own against the shared computation.

    .venv/bin/python benchmarks/exposure_calibration.py [--products 2000 --people 2000 --days 84]
        [--rounds 2] [--max-anchors N]

On the store of ``benchmarks/learned_store.py`` (made first if it is not in
``--workdir``), for every placement with ``exposure_cap`` (a product page's
anchors are the viewed products, home's the people the bundle knows: a person's
clocks are each its own in both), the served bundle's calibration slates are made the way training makes
them (``training.job.exposure_floors``: the placement's chain and the rulebook
in force, its learned rank stage at the time bucket's clock, the bundle's end as
``now``, ``pipeline.exposure.CLOCKS``) twice in the same process, ``--rounds``
times alternately: ``reuse=False`` (every anchor and clock through the served
path on its own: the calibration as it was) and the default (the clocks of an
anchor share its candidates, the rules' decisions and its variant groups, and
are valued in one call of the model). Reported: wall and CPU seconds of each
(medians), their ratio, and whether the two made the very same slates and
floors (the run fails if not). The ranker predicts with LightGBM itself, as in
training (``compile_model`` off).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from learned_profile import open_store  # noqa: E402
from learned_store import store_arguments, store_of  # noqa: E402
from shelfwise.pipeline import Pipeline  # noqa: E402
from shelfwise.pipeline.exposure import MAX_ANCHORS, MAX_PEOPLE, anchor_slates  # noqa: E402
from shelfwise.pipeline.learned import LearnedRank  # noqa: E402
from shelfwise.ranking import RankingSettings  # noqa: E402
from shelfwise.ranking.exposure import AnchorCandidates, calibrate  # noqa: E402
from shelfwise.rules import Rulebook  # noqa: E402
from shelfwise.rules.store import RuleStore  # noqa: E402


def same(a: list[AnchorCandidates], b: list[AnchorCandidates]) -> bool:
    """Whether two calibrations' slates are identical (items, values, groups, clocks)."""
    return len(a) == len(b) and all(
        np.array_equal(x.items, y.items)
        and np.array_equal(x.expected, y.expected)
        and (x.groups is None) == (y.groups is None)
        and (x.groups is None or np.array_equal(x.groups, y.groups))
        and x.clock == y.clock
        for x, y in zip(a, b, strict=True)
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    store_arguments(ap)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument(
        "--max-anchors",
        type=int,
        default=None,
        help=f"anchors per placement (default: {MAX_ANCHORS} products, {MAX_PEOPLE} people)",
    )
    args = ap.parse_args()
    folder = store_of(args)
    rt = open_store(folder, ranking=RankingSettings(compile_model=False))
    out: dict[str, Any] = {"store": folder.name, "placements": {}}
    try:
        rec = rt.recommender
        view = rec.bundle_view()
        assert view is not None, "the store has no bundle"
        now = view.bundle.info.window_end
        version, rules = RuleStore(rt.db).snapshot()
        book = Rulebook(list(rules), rt.snapshot, version=version)
        people = view.bundle.artifacts.history.people  # home's anchors
        for p in rec.placements:
            cap = p.objective.exposure_cap
            ranker = rec.learned.of(view, p.ranker)
            if cap is None or ranker is None:
                continue
            bucket = rt.settings.ranking.time_bucket_seconds
            rank = LearnedRank(ranker, rec.learned.objective(p), bucket=bucket)
            pipeline = Pipeline.offline(rt.snapshot, view, book, rank)
            seconds: dict[str, list[tuple[float, float]]] = {"each clock": [], "shared": []}
            made: dict[str, list[AnchorCandidates]] = {}
            for _ in range(args.rounds):
                for name, reuse in (("each clock", False), ("shared", True)):
                    wall, cpu = time.perf_counter(), time.process_time()
                    got = anchor_slates(
                        pipeline, rank, p, p.k, now, args.max_anchors, reuse=reuse, people=people
                    )
                    seconds[name].append((time.perf_counter() - wall, time.process_time() - cpu))
                    made[name] = got
            before, after = made["each clock"], made["shared"]
            identical = same(before, after)
            floors_equal = calibrate(before, p.k, cap) == calibrate(after, p.k, cap)
            med = {
                n: [round(statistics.median(s[i] for s in v), 2) for i in (0, 1)]
                for n, v in seconds.items()
            }
            out["placements"][p.name] = {
                "slates": len(after),
                "wall_s": {n: m[0] for n, m in med.items()},
                "cpu_s": {n: m[1] for n, m in med.items()},
                "cpu_ratio": round(med["shared"][1] / med["each clock"][1], 3),
                "identical_slates": identical,
                "identical_floors": floors_equal,
            }
            print(p.name, json.dumps(out["placements"][p.name]), flush=True)
            if not (identical and floors_equal):
                raise SystemExit(f"{p.name}: the shared calibration differs from each clock's")
    finally:
        rt.close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
