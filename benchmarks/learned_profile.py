"""Where a learned request's time goes: per stage, and per function under a profiler.

    .venv/bin/python benchmarks/learned_profile.py [--requests 600] [--profile]
        [--mixes home,product_similar,product_bought_with,cart] [--new-only]

On the learned store of ``benchmarks/learned_store.py`` (trained bundle, learned
ranker, the rulebook in force), in process: personal home (known buyers), product
pages of both placements, ``product_similar`` and ``product_bought_with`` (every
product distinct), and carts (a known buyer with a product in the cart). Reported
per mix: wall and CPU p50/p99 (and the CPU mean) of ``Recommender.recommend``, the
share of requests served from a kept order (``served_from_kept_orders``; a time
bucket ending during a phase lowers it) and the pipeline's own stage timings
(median ms of ``explain=true`` twins: context, candidates, safety, rank, arrange;
the rest is encoding, the decision log and metrics); at the end, the peak RSS and
the entries each kept store holds (``kept_entries_at_end``). ``--profile`` adds the
cProfile top functions (by own and by cumulative time) over every mix's new
contexts (the *computed* phase; the profiler's overhead inflates its timings).
``--new-only`` measures the new contexts alone (no repeat, no twins): run it under
``py-spy record`` and read the stacks under ``timed``. ``--next-bucket`` adds a phase
asking the same contexts again one time bucket later (``next_bucket``: nothing of the
learned path's kept orders serves them; an anonymous product page's kept candidates
and source proposals do). Every slate must say the learned ranker answered, or the
run fails.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from learned_store import DAYS, prepare_learned  # noqa: E402
from shelfwise.config import load_settings  # noqa: E402
from shelfwise.pipeline import RecommendRequest  # noqa: E402
from shelfwise.runtime import Runtime  # noqa: E402


def open_store(folder: Path, **overrides: Any) -> Runtime:
    settings = load_settings(
        database_url=f"sqlite:///{folder / 'store.db'}",
        model_dir=folder / "models",
        decision_trace="sampled",
        decision_trace_sample_rate=0.01,
        **overrides,
    )
    return Runtime.open(settings)


def known_buyers(rt: Runtime) -> list[str]:
    """People the served bundle has a history for (personal home and carts)."""
    ranker = rt.recommender.learned.of(rt.recommender.bundle_view())  # type: ignore[arg-type]
    if ranker is None:
        raise SystemExit("the served bundle has no learned ranker: nothing to measure")
    state = ranker.state
    active = np.flatnonzero(state.person_activity > 0)
    return [state.persons[int(i)] for i in active]


def mixes(rt: Runtime, n: int, seed: int = 3) -> dict[str, list[RecommendRequest]]:
    rng = np.random.default_rng(seed)
    ids = rt.snapshot.ids
    people = known_buyers(rt)
    who = [people[int(i)] for i in rng.integers(0, len(people), n)]
    viewed = rng.permutation(len(ids))[:n]
    carted = rng.integers(0, len(ids), n)
    return {
        "home": [RecommendRequest(placement="home", person=p) for p in who],
        "product_similar": [
            RecommendRequest(placement="product_similar", item=(ids[int(i)],)) for i in viewed
        ],
        "product_bought_with": [
            RecommendRequest(placement="product_bought_with", item=(ids[int(i)],)) for i in viewed
        ],
        "cart": [
            RecommendRequest(placement="cart", person=p, cart=(ids[int(c)],))
            for p, c in zip(who, carted, strict=True)
        ],
    }


MIXES = ("home", "product_similar", "product_bought_with", "cart")


def check_learned(slate: dict[str, Any], mix: str) -> None:
    ranker = slate["trace"]["ranker"]["kind"]
    if ranker != "learned":
        raise SystemExit(f"{mix}: the {ranker!r} ranker answered, not the learned one")


def served_kept(rt: Runtime) -> float:
    """Requests served from a kept order so far: a kept learned slate (the slate cache's
    hits), or (its pick's slate not kept yet) the kept candidates and scored order."""
    rec = rt.recommender
    slates = sum(
        sample.value
        for metric in rec.metrics.slate_cache.collect()
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels.get("result") == "hit"
    )
    return slates + rec.kept_orders.candidates.hits


def timed(
    rt: Runtime,
    reqs: list[RecommendRequest],
    prof: cProfile.Profile | None = None,
    twins: bool = True,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Wall and CPU p50/p99 of serving ``reqs`` one after the other (under ``prof`` when
    given; at the clock ``now`` when given), and (``twins``) the pipeline's stage timings
    (median ms) of ``explain=true`` twins of the first 100."""
    rec = rt.recommender
    lat, cpu, stages = [], [], []
    kept_before = served_kept(rt)
    if prof is not None:
        prof.enable()
    for r in reqs:
        t, c = time.perf_counter(), time.thread_time()
        rec.recommend(r, now)
        cpu.append(time.thread_time() - c)
        lat.append(time.perf_counter() - t)
    if prof is not None:
        prof.disable()
    kept = served_kept(rt) - kept_before
    for r in reqs[:100] if twins else ():
        stages.append(rec.recommend(r.model_copy(update={"explain": True}))["trace"]["stages_ms"])
    a, c = np.array(lat) * 1e3, np.array(cpu) * 1e3
    out: dict[str, Any] = {
        "p50_ms": round(float(np.percentile(a, 50)), 3),
        "p99_ms": round(float(np.percentile(a, 99)), 3),
        "cpu_p50_ms": round(float(np.percentile(c, 50)), 3),
        "cpu_p99_ms": round(float(np.percentile(c, 99)), 3),
        "cpu_mean_ms": round(float(c.mean()), 3),  # (p50 is blind to a share of hits < 50%)
        "served_from_kept_orders": round(kept / len(reqs), 3),
    }
    if stages:
        out["stages_ms_p50 (explained)"] = {
            k: round(float(np.median([s.get(k, 0.0) for s in stages])), 3) for k in stages[0]
        }
    return out


def measure(
    rt: Runtime,
    reqs: list[RecommendRequest],
    mix: str,
    prof: cProfile.Profile | None = None,
    new_only: bool = False,
    next_bucket: bool = False,
) -> dict[str, Any]:
    """Every context new (computed; under ``prof`` when given), then the same contexts
    again (their kept orders, unless the time bucket ended in between). ``new_only``:
    the new contexts alone, no explained twins (what a sampling profiler should see).
    ``next_bucket``: then the same contexts one time bucket later."""
    check_learned(rt.recommender.recommend(reqs[0].model_copy(update={"explain": True})), mix)
    if new_only:
        out = {"computed": timed(rt, reqs, prof, twins=False)}
        if next_bucket:
            later = datetime.now(UTC) + timedelta(
                seconds=max(rt.settings.ranking.time_bucket_seconds, 1)
            )
            out["next_bucket"] = timed(rt, reqs, twins=False, now=later)
        return out
    computed = timed(rt, reqs, prof)
    return {"computed": computed, "same_contexts_again": timed(rt, reqs)}


def in_process_learned(folder: Path, requests: int) -> dict[str, Any]:
    """Each mix's per-request cost in process (after a warm-up on other requests)."""
    rt = open_store(folder)
    try:
        batches = mixes(rt, requests + 100)
        for reqs in batches.values():
            for r in reqs[requests:]:
                rt.recommender.recommend(r)
        gc.collect()
        gc.freeze()
        return {mix: measure(rt, reqs[:requests], mix) for mix, reqs in batches.items()}
    finally:
        rt.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=600)
    ap.add_argument("--products", type=int, default=2_000)
    ap.add_argument("--people", type=int, default=2_000)
    ap.add_argument("--days", type=int, default=DAYS)
    ap.add_argument(
        "--mixes",
        default=",".join(MIXES),
        help=f"comma-separated mixes to measure, of {','.join(MIXES)} (default: all)",
    )
    ap.add_argument("--profile", action="store_true")
    ap.add_argument(
        "--new-only",
        action="store_true",
        help="every context new only (no repeat phase, no explained twins): for py-spy",
    )
    ap.add_argument(
        "--next-bucket",
        action="store_true",
        help="with --new-only: the same contexts again one time bucket later",
    )
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/shelfwise-bench-serve"))
    args = ap.parse_args()
    folder = prepare_learned(args.workdir, args.products, args.people, args.days)
    load = os.getloadavg()
    rt = open_store(folder)
    try:
        wanted = args.mixes.split(",")
        unknown = set(wanted) - set(MIXES)
        if unknown:
            raise SystemExit(f"--mixes: unknown mix {sorted(unknown)}; known: {', '.join(MIXES)}")
        batches = {m: r for m, r in mixes(rt, args.requests + 100).items() if m in wanted}
        for reqs in batches.values():  # warm-up on other requests
            for r in reqs[args.requests :]:
                rt.recommender.recommend(r)
        gc.collect()
        gc.freeze()
        out: dict[str, Any] = {"load_average_before": [round(x, 2) for x in load]}
        prof = cProfile.Profile() if args.profile else None
        for mix, reqs in batches.items():
            out[mix] = measure(
                rt, reqs[: args.requests], mix, prof, args.new_only, args.next_bucket
            )
        out["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        out["kept_orders"] = rt.settings.ranking.kept_orders
        rec = rt.recommender
        out["kept_entries_at_end"] = {
            "candidates": len(rec.kept_orders.candidates),
            "scored": len(rec.kept_orders.scored),
            "learned_slates": len(rec.learned_slates),
        }
        out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        print(json.dumps(out, indent=2))
        if prof is not None:
            s = io.StringIO()
            pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(args.top)
            print(s.getvalue())
            s = io.StringIO()
            pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(args.top)
            print(s.getvalue())
    finally:
        rt.close()


if __name__ == "__main__":
    main()
