"""A simulated store set up as a merchant would, for the serving benchmarks of the learned ranker.

    .venv/bin/python benchmarks/learned_store.py [--products 2000 --people 2000 --days 28]

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
import time
from pathlib import Path
from typing import Any

from shelfwise.config import load_settings
from shelfwise.runtime import Runtime
from shelfwise.simulate import SimulationSpec
from shelfwise.simulate.replay import Governance, governed_store, history_popularity, top_brand
from shelfwise.simulate.world import build_world

CATEGORY_ROOTS = ("bedding", "kitchen", "decor", "bath", "lighting", "seasonal")


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


def prepare_learned(workdir: Path, products: int, people: int, days: int, seed: int = 7) -> Path:
    """The store's folder (``store.db``, ``models/``), made once and reused."""
    folder = workdir / f"learned-{products}-{people}-{days}-{seed}"
    done = folder / "ready.json"
    if done.is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for stale in ("store.db", "store.db-wal", "store.db-shm"):
        (folder / stale).unlink(missing_ok=True)
    settings = load_settings(
        database_url=f"sqlite:///{folder / 'store.db'}", model_dir=folder / "models"
    )
    began = time.perf_counter()
    spec = SimulationSpec(seed=seed, products=products, people=people, days=days)
    world = build_world(spec)
    from shelfwise.simulate.history import simulate

    sim = simulate(spec, world=world, days=days)
    paused = top_brand(world, history_popularity(world, sim.events))
    brands = tuple(b for b in world.catalog.brands if b != paused)
    book = rulebook(brands, paused, world.ids[len(world.ids) // 2])
    governance = _Book(book)
    print(f"setting up a store of {products:,} products, {len(sim.events):,} events, "
          f"{len(book)} rules, trained with the learned ranker ...", flush=True)  # fmt: skip
    shop = governed_store(lambda: Runtime.open(settings), world, sim.events, governance)  # type: ignore[arg-type]
    shop.close()
    done.write_text(
        json.dumps(
            {
                "events": len(sim.events),
                "rules": len(book),
                "setup_seconds": round(time.perf_counter() - began, 1),
            }
        )
    )
    return folder


class _Book(Governance):
    """The replay's governance with a given rule list."""

    def __init__(self, book: list[dict[str, Any]]) -> None:
        super().__init__()
        object.__setattr__(self, "_book", book)

    def rules(self) -> list[dict[str, Any]]:
        return list(self._book)  # type: ignore[attr-defined]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--products", type=int, default=2_000)
    ap.add_argument("--people", type=int, default=2_000)
    ap.add_argument("--days", type=int, default=28)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/shelfwise-bench-serve"))
    args = ap.parse_args()
    folder = prepare_learned(args.workdir, args.products, args.people, args.days)
    print(folder, (folder / "ready.json").read_text())


if __name__ == "__main__":
    main()
