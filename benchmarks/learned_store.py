"""A simulated store set up as a merchant would, for the serving benchmarks of the learned ranker.

    .venv/bin/python benchmarks/learned_store.py [--products 2000 --people 2000 --days 84]

The simulator's store (``shelfwise.simulate``) lives ``--days`` days; its catalog
and history go through the ingestion path into SQLite, a rulebook of
``len(rulebook(...))`` rules is put in force (the replay's governance plus
exclusions, paused brands, pairings, boosts, buries, caps, a pin, a price
relation, a margin floor), and a bundle with the learned ranker is trained and
promoted (its compiled trees cached next to it). Everything is kept in
``--workdir`` (``learned-<products>-<people>-<days>/``) and reused by the next run.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shelfwise.config import Settings, load_settings
from shelfwise.rules.model import parse_rule
from shelfwise.runtime import Runtime
from shelfwise.simulate import SimulationSpec
from shelfwise.simulate.history import simulate
from shelfwise.simulate.replay import Governance, history_popularity, top_brand
from shelfwise.simulate.world import build_world
from shelfwise.training.job import train

CATEGORY_ROOTS = ("bedding", "kitchen", "decor", "bath", "lighting", "seasonal")


# The learned store's default history: 84 days. On 28 days (the default until
# 2026-12-07) the training job's choice on the validation window ships the blend
# ranker for home (NDCG@10 0.3216 against the best design's 0.3128), so a serving
# benchmark of the learned ranker has to run where the learned ranker is chosen
# (84 days: 0.3923 against the blend's 0.3352).
DAYS = 84


def rulebook(brands: tuple[str, ...], paused: str, pinned: str) -> list[dict[str, Any]]:
    """A merchant's rulebook over the simulated catalog: 30 rules of every kind."""
    rules = Governance(suppressed_brands=(paused,)).rules()
    extra: list[dict[str, Any]] = []
    for i, root in enumerate(CATEGORY_ROOTS):
        extra.append(
            {
                "type": "exclude",
                "reason": f"no dear {root} items beyond the range",
                "when": {
                    "and": [
                        {"attr": "category", "op": "prefix", "value": root},
                        {"attr": "price", "op": "gt", "value": 600 + 50 * i},
                    ]
                },
            }
        )
    for b in brands[-3:]:
        extra.append({"type": "suppress", "reason": "supplier review", "attribute": "brand",
                      "values": [b]})  # fmt: skip
    for root in CATEGORY_ROOTS[:4]:
        extra.append(
            {
                "type": "pairing",
                "reason": f"{root} pages show no utility items",
                "scope": {"placements": ["product_page"]},
                "context": {"attr": "category", "op": "prefix", "value": root},
                "forbid": {"attr": "tags", "op": "in", "value": ["utility"]},
            }
        )
    for i, root in enumerate(CATEGORY_ROOTS):
        extra.append(
            {
                "type": "boost" if i % 2 == 0 else "bury",
                "reason": "seasonal push" if i % 2 == 0 else "slow sellers",
                "multiply": 1.3 if i % 2 == 0 else 0.7,
                "when": {"attr": "category", "op": "prefix", "value": root},
            }
        )
    extra += [
        {"type": "bury", "reason": "utility last", "multiply": 0.5,
         "when": {"attr": "tags", "op": "contains", "value": "utility"}},
        {"type": "price_relation", "reason": "no trinkets on dear pages", "min_ratio": 0.05},
        {"type": "margin_floor", "reason": "no loss leaders", "min_band": "low"},
        {"type": "cap", "reason": "variety", "attribute": "brand", "max_items": 3},
        {"type": "cap", "reason": "variety", "attribute": "category", "depth": 1,
         "max_items": 4},
        {"type": "pin", "reason": "hero product", "product_id": pinned, "position": 3},
        {"type": "require_in_stock", "reason": "only what ships now", "min_qty": 1},
    ]  # fmt: skip
    out = rules + extra
    return [{"id": f"bench-{n:02d}-{r.get('id', r['type'])}", **r} for n, r in enumerate(out)]


def prepare_learned(
    workdir: Path, products: int, people: int, days: int, seed: int = 7, *, train_now: bool = True
) -> Path:
    """The store's folder (``store.db``, ``models/``), made once and reused; each setup
    step's wall and CPU seconds, the peak memory and the bundle's size go to
    ``ready.json``. The store is built (simulated, ingested: ``store.json``) and trained
    in two steps; a process that finds the store built only trains, so its peak memory
    (``peak_rss_mb``) is the training's alone. ``train_now=False`` stops after the build."""
    folder = workdir / f"learned-{products}-{people}-{days}-{seed}"
    done = folder / "ready.json"
    if done.is_file():
        return folder
    built = folder / "store.json"
    fresh = not built.is_file()
    if fresh:
        build_store(folder, products, people, days, seed)
    if train_now:
        store = json.loads(built.read_text())
        store["peak_rss_of"] = "build and training" if fresh else "training alone"
        train_store(folder, store)
    return folder


def _settings(folder: Path) -> Settings:
    return load_settings(
        database_url=f"sqlite:///{folder / 'store.db'}", model_dir=folder / "models"
    )


def _cpu() -> float:
    """CPU seconds of this process and of its worker processes that have ended
    (``shelfwise train``'s workers: ``ranking.workers``)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


class Steps:
    """Each step's wall and CPU seconds since the one before (its workers' included)."""

    def __init__(self) -> None:
        self.steps: dict[str, dict[str, float]] = {}
        self.clock = [time.perf_counter(), _cpu()]

    def __call__(self, name: str) -> None:
        wall, cpu = time.perf_counter(), _cpu()
        self.steps[name] = {
            "wall_s": round(wall - self.clock[0], 1),
            "cpu_s": round(cpu - self.clock[1], 1),
        }
        self.clock[:] = [wall, cpu]


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _peak_child_rss_mb() -> float:
    """The largest peak of a worker process that has ended (each one's own RSS, the
    pages it shares with this process counted again)."""
    return round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)


def _rss_mb() -> float:
    """This process's resident memory now (Linux; 0 where /proc is not there)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return round(pages * resource.getpagesize() / 2**20, 1)


def _progress(steps: Steps) -> Callable[[str], None]:
    """Prints each stage of the training job as it starts, with the wall and CPU
    seconds since the training began and the memory now and at peak, so a run that is
    killed (out of memory, a deadline) still says where it was."""
    wall0, cpu0 = steps.clock

    def say(stage: str) -> None:
        wall, cpu = time.perf_counter() - wall0, _cpu() - cpu0
        print(f"[{wall:8.1f} s wall {cpu:8.1f} s cpu | rss {_rss_mb():8.1f} MB, "
              f"peak {_peak_rss_mb():8.1f} MB] {stage}", flush=True)  # fmt: skip

    return say


def build_store(folder: Path, products: int, people: int, days: int, seed: int) -> None:
    """Simulate the store and put its catalog, events and rulebook in ``store.db``;
    the steps' times and this process's peak memory go to ``store.json``."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in ("store.db", "store.db-wal", "store.db-shm"):
        (folder / stale).unlink(missing_ok=True)
    step = Steps()
    spec = SimulationSpec(seed=seed, products=products, people=people, days=days)
    world = build_world(spec)
    sim = simulate(spec, world=world, days=days)
    step("simulate")
    paused = top_brand(world, history_popularity(world, sim.events))
    brands = tuple(b for b in world.catalog.brands if b != paused)
    book = rulebook(brands, paused, world.ids[len(world.ids) // 2])
    print(f"setting up a store of {products:,} products, {len(sim.events):,} events, "
          f"{len(book)} rules ...", flush=True)  # fmt: skip
    shop = Runtime.open(_settings(folder))
    try:
        shop.catalog.upsert(world.catalog.products)
        for at in range(0, len(sim.events), 2_000):
            shop.ingestor.ingest(sim.events[at : at + 2_000], source="simulator")
        for body in book:
            shop.rules.store.save(parse_rule(body), who="bench", why="the benchmark's rulebook")
        step("catalog, events and rules in")
    finally:
        shop.close()
    store = {
        "products": products,
        "people": people,
        "days": days,
        "events": len(sim.events),
        "rules": len(book),
        "steps": step.steps,
        "build_peak_rss_mb": _peak_rss_mb(),
    }
    (folder / "store.json").write_text(json.dumps(store, indent=2))


def train_store(folder: Path, store: dict[str, Any]) -> None:
    """Train and promote a bundle with the learned ranker on the built store, then load
    it once (compiling the trees); everything measured goes to ``ready.json``."""
    step = Steps()
    print(f"training on {store['events']:,} events ...", flush=True)
    # each map of the training's worker processes, with its parts' CPU seconds
    # (ranking.workers): where the training can use two cores, whatever the load
    maps = logging.getLogger("shelfwise.training.workers")
    maps.setLevel(logging.DEBUG)
    maps.addHandler(logging.StreamHandler(sys.stdout))
    shop = Runtime.open(_settings(folder))
    try:
        result = train(shop, force=True, with_ranker=True, step=_progress(step))
        step("train (sources + ranker)")
        train_peak = _peak_rss_mb()
        started = time.perf_counter()
        shop.load_bundle()  # compiles the ranker's trees into the cache next to the bundle
        shop.recommender.learned.of(shop.recommender.bundle_view())  # type: ignore[arg-type]
        step("load the bundle (compile the trees)")
        bundle = result.bundle.path
        size = sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file())
        ready = {
            **store,
            "steps": {**store["steps"], **step.steps},
            "timings": result.bundle.info.timings,
            "peak_rss_mb": train_peak,
            "peak_rss_worker_mb": _peak_child_rss_mb(),
            "bundle_mb": round(size / 1e6, 1),
            "load_seconds": round(time.perf_counter() - started, 1),
        }
    finally:
        shop.close()
    (folder / "ready.json").write_text(json.dumps(ready, indent=2))


def store_arguments(ap: argparse.ArgumentParser) -> None:
    """The options naming a learned store: its size, seed and work directory."""
    ap.add_argument("--products", type=int, default=2_000)
    ap.add_argument("--people", type=int, default=2_000)
    ap.add_argument("--days", type=int, default=DAYS)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/shelfwise-bench-serve"))


def store_of(args: argparse.Namespace) -> Path:
    """The learned store :func:`store_arguments`' options name (made first if need be)."""
    return prepare_learned(args.workdir, args.products, args.people, args.days, args.seed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    store_arguments(ap)
    ap.add_argument(
        "--build-only",
        action="store_true",
        help="simulate and ingest the store (store.json) and stop; the next run trains it "
        "in a process of its own, whose peak memory is the training's",
    )
    args = ap.parse_args()
    folder = prepare_learned(
        args.workdir, args.products, args.people, args.days, args.seed,
        train_now=not args.build_only,
    )  # fmt: skip
    got = folder / ("store.json" if args.build_only else "ready.json")
    print(folder, got.read_text())


if __name__ == "__main__":
    main()
