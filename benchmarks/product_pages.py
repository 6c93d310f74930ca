"""Product pages a merchant would keep: coherence of the product placements, as served.

A simulated home-goods store (``shelfwise.simulate``) lives ``--days`` days; a
shelfwise store is set up on that history the way a merchant would (catalog,
events through the ingestion path, the replay's rulebook, a trained bundle with
the learned ranker: ``simulate.replay.governed_store``). Then ``--pages`` random
in-stock products are viewed anonymously (no person, no session) and each
product placement is asked for a slate of ``--k`` (default: the placement's own
``k``, the size its exposure cap is calibrated for) through the served code path
(``Recommender.recommend``, what ``GET /v1/recommendations`` answers).

Reported per placement (``monitoring.coherence``): same-category share, median
price ratio to the viewed product, the largest share of slates one item takes,
catalog coverage, and reasons that claim something personal (there is no person:
every one would be false). Then the bad-input answers: an unknown, a retired and
an out-of-stock viewed product, and a few slates printed for reading.

Choose parameters on a validation store (``--seed 3``), report on the test store
(the default ``--seed 7``).

    .venv/bin/python benchmarks/product_pages.py [--seed 7 --products 2000 --people 2000
        --days 42 --pages 200 --show 4] [--k K] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from shelfwise.config import load_settings
from shelfwise.monitoring.coherence import ServedSlate, coherence
from shelfwise.pipeline import RecommendRequest
from shelfwise.ranking import RankingSettings
from shelfwise.runtime import Runtime
from shelfwise.simulate import SimulationSpec
from shelfwise.simulate.history import simulate
from shelfwise.simulate.replay import Governance, governed_store, history_popularity, top_brand
from shelfwise.simulate.world import build_world
from shelfwise.training.job import train

PLACEMENTS = ("product_similar", "product_bought_with")
SAMPLE = 200  # with --pages 0: also the figures over the random pages --pages 200 views
TARGETS = "product_similar same-category >= 0.60; median price ratio in [0.5, 2]; top item <= 5% of product_similar slates; 0 personal claims"


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        spec = SimulationSpec(
            seed=args.seed, products=args.products, people=args.people, days=args.days
        )
        key = hashlib.sha256(spec.model_dump_json().encode()).hexdigest()[:12]
        kept = args.workdir / f"store-{key}.db" if args.workdir else None
        db = Path(tmp) / "pages.db"
        settings = load_settings(database_url=f"sqlite:///{db}", model_dir=Path(tmp) / "models")
        settings = settings.model_copy(update={"ranking": RankingSettings(compile_model=False)})
        if kept is not None and kept.is_file():  # the same store's history, kept: train anew
            shutil.copy(kept, db)
            shop = Runtime.open(settings)
            train(shop, force=True, with_ranker=True)
            shop.load_bundle()
        else:
            world = build_world(spec)
            sim = simulate(spec, world=world, days=args.days)
            governance = Governance(
                suppressed_brands=(top_brand(world, history_popularity(world, sim.events)),)
            )
            shop = governed_store(lambda: Runtime.open(settings), world, sim.events, governance)
            if kept is not None:
                with shop.db.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA wal_checkpoint(FULL)")
                kept.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(db, kept)
        try:
            return measure(shop, spec, args)
        finally:
            shop.close()


def measure(shop: Any, spec: SimulationSpec, args: argparse.Namespace) -> dict[str, Any]:
    rec = shop.recommender
    snap = shop.snapshot
    products = [p for p in snap.products if p is not None]
    category = {p.product_id: p.category_path for p in products}
    price = {p.product_id: p.price for p in products}
    title = {p.product_id: p.title for p in products}
    in_stock = [p.product_id for p in products if p.is_available]
    rng = np.random.default_rng(args.seed + 1000)
    if 0 < args.pages < len(in_stock):
        pages = [in_stock[i] for i in rng.choice(len(in_stock), size=args.pages, replace=False)]
        sample: set[str] = set()
    else:  # every in-stock product once: the share the exposure cap is calibrated on
        pages = list(in_stock)
        # and the random pages ``--pages SAMPLE`` would view, read out of the same run
        sample = {in_stock[i] for i in rng.choice(len(in_stock), size=SAMPLE, replace=False)}
    now = spec.end + timedelta(hours=1)
    out: dict[str, Any] = {"spec": spec.model_dump(mode="json"), "placements": {}}
    examples: dict[str, list[dict[str, Any]]] = {}
    for placement in args.placement or PLACEMENTS:
        served: list[ServedSlate] = []
        rankers: set[str] = set()
        for pid in pages:
            got = rec.recommend(
                RecommendRequest(placement=placement, item=(pid,), k=args.k), now, record=False
            )
            rankers.add(str(got.get("ranker")))
            served.append(ServedSlate(pid, got["items"]))
        result = coherence(served, category, price, len(in_stock)).as_dict()
        result["ranker"] = sorted(rankers)
        if sample:
            some = [s for s in served if s.anchor in sample]
            result["sample"] = coherence(some, category, price, len(in_stock)).as_dict()
        out["placements"][placement] = result
        examples[placement] = [
            {
                "anchor": f"{s.anchor} {title[s.anchor]} ({category[s.anchor]}, {price[s.anchor]})",
                "items": [
                    f"{it['title']} ({it['category']}, {it['price']}): "
                    + "; ".join(
                        r["text"] + (" [backfill]" if r["fallback"] else "") for r in it["reasons"]
                    )
                    for it in s.items
                ],
            }
            for s in served[: args.show]
        ]
    out["examples"] = examples
    out["bad_input"] = bad_input(shop, rec, products, now, args.k)
    return out


def bad_input(
    shop: Any, rec: Any, products: Sequence[Any], now: Any, k: int | None
) -> dict[str, Any]:
    """The answers for an unknown, a retired and an out-of-stock viewed product."""
    out: dict[str, Any] = {}
    by_cat = sorted((p for p in products if p.is_available), key=lambda p: p.product_id)
    retire, sell_out = by_cat[0], by_cat[1]
    shop.catalog.upsert([retire.model_copy(update={"active": False})], source="bench")
    shop.catalog.upsert(
        [sell_out.model_copy(update={"stock_qty": 0, "availability": "out_of_stock"})],
        source="bench",
    )
    cases = {
        "unknown": ("NO-SUCH-PRODUCT", None),
        "retired": (retire.product_id, retire),
        "out_of_stock": (sell_out.product_id, sell_out),
    }
    for name, (pid, p) in cases.items():
        for placement in PLACEMENTS:
            got = rec.recommend(
                RecommendRequest(placement=placement, item=(pid,), k=k), now, record=False
            )
            items = got["items"]
            cat = p.category_path if p is not None else None
            out[f"{name}/{placement}"] = {
                "items": len(items),
                "same_category": sum(it["category"] == cat for it in items) if cat else None,
                "reasons": sorted(
                    {
                        r["text"] if not r["anchor"] else r["kind"]
                        for it in items
                        for r in it["reasons"]
                    }
                ),
            }
    return out


def show(result: dict[str, Any]) -> None:
    print(f"targets: {TARGETS}")
    print(
        "| placement | ranker | same category | median price ratio | top item share | coverage | personal claims | empty |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, r in result["placements"].items():
        rows = [(name, r), *([(f"{name}, {SAMPLE} of them", r["sample"])] if "sample" in r else [])]
        for label, c in rows:
            print(
                f"| {label} | {','.join(r['ranker'])} | {c['same_category']:.1%} | {c['median_price_ratio']:.2f}x "
                f"| {c['top_item_share']:.1%} ({c['top_item']}) | {c['coverage']:.1%} | {c['personal_claims']} | {c['empty_slates']} |"
            )
    print("\nbad input:")
    for name, r in result["bad_input"].items():
        print(f"  {name}: {r}")
    for placement, slates in result["examples"].items():
        print(f"\n{placement}:")
        for s in slates:
            print(f"  viewed {s['anchor']}")
            for line in s["items"]:
                print(f"    - {line}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--products", type=int, default=2000)
    ap.add_argument("--people", type=int, default=2000)
    ap.add_argument("--days", type=int, default=42)
    ap.add_argument(
        "--pages",
        type=int,
        default=SAMPLE,
        help=f"random in-stock products viewed (0: every one, and the figures of the "
        f"{SAMPLE} random ones the default views)",
    )
    ap.add_argument(
        "--k",
        type=int,
        default=None,
        help="slate size asked (default: each placement's own k, the size its exposure "
        "cap is calibrated for)",
    )
    ap.add_argument("--show", type=int, default=4)
    ap.add_argument("--json", action="store_true")
    ap.add_argument(
        "--placement",
        action="append",
        help="placements to measure (default: product_similar, product_bought_with); "
        "variants may come from SHELFWISE_PLACEMENTS_FILE",
    )
    ap.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep the simulated store's history here (reused)",
    )
    args = ap.parse_args()
    result = run(args)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        show(result)


if __name__ == "__main__":
    main()
