"""Email batch speed: slates for 10,000 people, same pipeline, rules and decision log.

    .venv/bin/python benchmarks/email_batch.py [--people 10000] [--jobs 0]
    .venv/bin/python benchmarks/email_batch.py --store-people 10000 --segment active:90
    .venv/bin/python benchmarks/email_batch.py --no-bundle [--products 50000]

By default on the learned store of ``benchmarks/learned_store.py`` (2,000 products,
a trained bundle with the learned ranker, 30 rules): the segment is every person the
bundle knows (each slate computed: their own history, candidates and scores) and
ids without any history up to ``--people`` (they share the anonymous context's kept
order, ``docs/ranking.md``); both parts are timed, first in this process alone
(``jobs=1``) and then on ``--jobs`` worker processes (0: one per core,
``shelfwise email-batch --jobs``), then as the baseline one ``recommend`` a person
(the batch's path before it ran chunks stage by stage), each at a clock of its own
two time buckets apart (nothing kept from another run serves it). ``--segment`` (``active:DAYS``,
``buyers:DAYS``): the store's own segment instead, up to ``--people`` of it, every
one with a history (``--store-people`` sets the learned store's people: 10,000 for
a segment of 10,000). ``--no-bundle``: the earlier
benchmark, a generated catalog without a bundle and ids without history (the
pipeline still runs every stage for each). The baseline is the same number of
single requests through ``Recommender.recommend`` in the same process.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from serve import prepare  # noqa: E402  (this folder is on sys.path when run as a script)
from shelfwise.config import load_settings  # noqa: E402
from shelfwise.pipeline import RecommendRequest  # noqa: E402
from shelfwise.pipeline.batch import (  # noqa: E402
    email_lines,
    histories,
    segment_people,
    write_jsonl,
)
from shelfwise.ranking.workers import workers_for  # noqa: E402
from shelfwise.runtime import Runtime  # noqa: E402
from shelfwise.store.types import utcnow  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--people", type=int, default=10_000)
    ap.add_argument("--products", type=int, default=50_000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/shelfwise-bench-serve"))
    ap.add_argument("--no-bundle", action="store_true")
    ap.add_argument("--jobs", type=int, default=0, help="worker processes (0: one per core)")
    ap.add_argument("--store-people", type=int, default=2_000)
    ap.add_argument("--segment", default=None, help="active:DAYS or buyers:DAYS")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if not args.no_bundle:
        learned(args)
        return
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
        n = write_jsonl(email_lines(rt.recommender, rt.db, people, now), io.BytesIO())
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


def learned(args: argparse.Namespace) -> None:
    import os

    from learned_profile import check_learned, known_buyers, open_store
    from learned_store import DAYS, prepare_learned

    folder = prepare_learned(args.workdir, 2_000, args.store_people, DAYS)
    load = os.getloadavg()
    rt = open_store(folder)
    now = utcnow()
    try:
        rec = rt.recommender
        known = known_buyers(rt)
        strangers = [f"stranger-{i}" for i in range(max(0, args.people - len(known)))]
        groups = [("known_people", known), ("people_without_history", strangers)]
        if args.segment:
            segment = segment_people(rt.db, args.segment, now)[: args.people]
            groups = [(args.segment, segment)]
        probe = rec.recommend(
            RecommendRequest(placement="email", person=known[0], explain=True), now
        )
        check_learned(probe, "email")
        figures: dict[str, object] = {"load_average_before": [round(x, 2) for x in load]}
        bucket = rt.settings.ranking.time_bucket_seconds
        totals: dict[int, float] = {}
        for run, jobs in enumerate((1, args.jobs)):
            at = now + timedelta(seconds=2 * bucket * (run + 1))
            workers = workers_for(jobs, 2) or 1
            part: dict[str, object] = {"workers": workers}
            total = 0.0
            for label, group in groups:
                people_file = args.workdir / f"people-{label.replace(':', '-')}.txt"
                people_file.write_text("\n".join(group))
                people = segment_people(rt.db, f"file:{people_file}", at)
                t, c = time.perf_counter(), time.process_time()
                slates = email_lines(rec, rt.db, people, at, jobs=jobs)
                n = write_jsonl(slates, io.BytesIO())
                wall, cpu = time.perf_counter() - t, time.process_time() - c
                total += wall
                part[label] = {
                    "people": n,
                    "seconds": round(wall, 2),
                    "cpu_seconds_this_process": round(cpu, 2),
                    "ms_per_person": round(wall / max(n, 1) * 1e3, 3),
                }
            part["batch_seconds"] = round(total, 2)
            totals[workers] = total
            figures["one_process" if run == 0 else "on_workers"] = part
        one, many = totals[1], totals[max(totals)]
        figures["ratio_workers_to_one_process"] = round(many / one, 3)
        baseline = single(rec, rt, groups, now + timedelta(seconds=6 * bucket))
        figures["one_request_a_person"] = baseline
        figures["ratio_one_process_to_one_request_a_person"] = round(one / baseline["seconds"], 3)
        figures["people"] = sum(len(group) for _, group in groups)
        figures["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        t = time.perf_counter()
        rt.decisions.flush()
        figures["decision_log_flush_seconds"] = round(time.perf_counter() - t, 2)
    finally:
        rt.close()
    print(json.dumps(figures, indent=2))


def single(rec: Any, rt: Any, groups: list[tuple[str, list[str]]], at: Any) -> dict[str, float]:
    """The baseline: the same people, one ``recommend`` each (the batch's histories
    read the same way), in this process, at a clock of its own."""
    t, c = time.perf_counter(), time.process_time()
    n = 0
    for _, group in groups:
        history = histories(rt.db, group, at, rt.settings.session_max_events)
        for who in group:
            req = RecommendRequest(placement="email", person=who)
            rec.recommend(req, at, records=history.get(who, []))
            n += 1
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    return {"people": n, "seconds": round(wall, 2), "cpu_seconds": round(cpu, 2)}


if __name__ == "__main__":
    main()
