"""Email batch speed: slates for 10,000 people, same pipeline, rules and decision log.

    .venv/bin/python benchmarks/email_batch.py [--people 10000] [--products 50000]

People are a ``file:`` segment (ids without history: the pipeline still runs
every stage for each); the baseline is the same number of single requests
through ``Recommender.recommend`` in the same process.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from serve import prepare  # noqa: E402  (this folder is on sys.path when run as a script)
from shelfwise.config import load_settings  # noqa: E402
from shelfwise.pipeline import RecommendRequest  # noqa: E402
from shelfwise.pipeline.batch import email_slates, segment_people, write_jsonl  # noqa: E402
from shelfwise.runtime import Runtime  # noqa: E402
from shelfwise.store.types import utcnow  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--people", type=int, default=10_000)
    ap.add_argument("--products", type=int, default=50_000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/shelfwise-bench-serve"))
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    db = prepare(args.workdir, args.products)
    people_file = args.workdir / "people.txt"
    people_file.write_text("\n".join(f"person-{i}" for i in range(args.people)))
    settings = load_settings(database_url=f"sqlite:///{db}", decision_trace="sampled")
    rt = Runtime.open(settings)
    now = utcnow()
    try:
        _ = rt.recommender
        people = segment_people(rt.db, f"file:{people_file}", now)
        t = time.perf_counter()
        n = write_jsonl(email_slates(rt.recommender, rt.db, people, now), io.BytesIO())
        batch = time.perf_counter() - t
        t = time.perf_counter()
        for i in range(1000):  # other people: nobody resolved or memoised yet
            p = f"person-{args.people + i}"
            rt.recommender.recommend(RecommendRequest(placement="email", person=p), now)
        single = (time.perf_counter() - t) / 1000 * len(people)
        t = time.perf_counter()
        rt.decisions.flush()
        flush = time.perf_counter() - t
    finally:
        rt.close()
    print(
        json.dumps(
            {
                "people": n,
                "products": args.products,
                "batch_seconds": round(batch, 2),
                "slates_per_second": round(n / batch, 1),
                "single_requests_seconds_same_count": round(single, 2),
                "ratio_batch_to_single": round(batch / single, 3),
                "decision_log_flush_seconds": round(flush, 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
