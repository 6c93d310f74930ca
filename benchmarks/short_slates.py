"""How many slates the rules leave short of k on a learned store, and what a slate costs.

    .venv/bin/python benchmarks/short_slates.py [--slates 300] [--workdir DIR]
        [--products 2000 --people 2000 --days 84]

On the learned store of ``benchmarks/learned_store.py`` (made first if it is not in
``--workdir``), in process, the served code path (``Recommender.recommend``, the
rulebook in force, the bundle's learned ranker, ``explain=true`` so each slate is
computed and traced), at the bundle's clock: ``home`` and ``email`` slates for
``--slates`` random known buyers. Reported per placement: slates, short ones
(fewer than the placement's k) and their sizes, slates whose pool was asked deeper
(``trace.deepened``), served items breaking a rule (the rulebook's own safety and
arrangement over the served items, in their order: must be 0), and CPU per request
(thread time, ms: mean, p50, p99).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from learned_profile import known_buyers, open_store  # noqa: E402
from learned_store import store_arguments, store_of  # noqa: E402
from shelfwise.pipeline import RecommendRequest  # noqa: E402
from shelfwise.pipeline.pool import Trace  # noqa: E402
from shelfwise.pipeline.stages import build_context  # noqa: E402

PLACEMENTS = ("home", "email")


def broken(rt: Any, placement: str, person: str, now: datetime, ids: list[str]) -> int:
    """Served items the rulebook would not serve: dropped by its safety rules, or moved
    or dropped by its arrangement (caps, de-duplication, pins) of the served order."""
    rec = rt.recommender
    book = rec.rules.book(Trace()) if rec.rules is not None else None
    if book is None or not ids:
        return 0
    p = rec.placements.get(placement)
    ctx = build_context(RecommendRequest(placement=placement, person=person), p, rt.snapshot,
                        [], now, person, Trace())  # fmt: skip
    ctx = replace(ctx, placement=p.rule_scope)
    items = rt.snapshot.indices(ids)
    kept = set(book.apply_safety(ctx, items, np.ones(len(items))).items.tolist())
    bad = sum(i not in kept for i in items.tolist())
    arranged = book.arrange(ctx, items, np.arange(len(items), 0, -1, dtype=float), len(items))
    return bad + sum(a != b for a, b in zip(arranged.items.tolist(), items.tolist(), strict=False))


def read(folder: Path, n: int, seed: int = 11) -> dict[str, Any]:
    rt = open_store(folder)
    try:
        rec = rt.recommender
        view = rec.bundle_view()
        assert view is not None
        ranker = rec.learned.of(view)  # type: ignore[arg-type]
        assert ranker is not None
        now = datetime.fromtimestamp(float(ranker.state.as_of), UTC) + timedelta(minutes=1)
        people = known_buyers(rt)
        rng = np.random.default_rng(seed)
        who = [people[int(i)] for i in rng.choice(len(people), min(n, len(people)), False)]
        out: dict[str, Any] = {}
        for placement in PLACEMENTS:
            k = rec.placements.get(placement).k
            sizes, cpu, deepened, violations = Counter[int](), [], 0, 0
            for person in who:
                req = RecommendRequest(placement=placement, person=person, explain=True)
                c = time.thread_time()
                slate = rec.recommend(req, now, record=False)
                cpu.append(time.thread_time() - c)
                ids = [it["product_id"] for it in slate["items"]]
                sizes[len(ids)] += 1
                deepened += bool(slate["trace"].get("deepened"))
                violations += broken(rt, placement, person, now, ids)
            c_ms = np.array(cpu) * 1e3
            out[placement] = {
                "slates": len(who),
                "k": k,
                "short": sum(v for s, v in sizes.items() if s < k),
                "short_sizes": {s: v for s, v in sorted(sizes.items()) if s < k},
                "deepened": deepened,
                "rule_violations": violations,
                "cpu_mean_ms": round(float(c_ms.mean()), 3),
                "cpu_p50_ms": round(float(np.percentile(c_ms, 50)), 3),
                "cpu_p99_ms": round(float(np.percentile(c_ms, 99)), 3),
            }
        return out
    finally:
        rt.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    store_arguments(ap)
    ap.add_argument("--slates", type=int, default=300, help="random known buyers to serve")
    args = ap.parse_args()
    folder = store_of(args)
    print(json.dumps(read(folder, args.slates), indent=2))


if __name__ == "__main__":
    main()
