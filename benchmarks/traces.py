"""Traces that never contradict the slate: 10,000 served slates checked one by one.

A simulated store (the set-up of ``benchmarks/preview.py``: history, catalog,
events, a bundle with the learned ranker) gets a rulebook with every arranging
rule in force: pins of products that have variant siblings (home and product
pages), variant de-duplication, brand and category caps, brand suppressions,
plus the slow-shipping exclusion and the premium-decor pairing rule. Simulated
sessions are served through the request path on every placement (decisions
logged with their traces) until ``--slates`` slates are served; then every
logged slate is checked against its own trace:

- a served item is never named by a decision that drops it (removed, deduped,
  capped) or by a blocked pin;
- an item is dropped at most once, and each rule's drop count is the number of
  items its dropping decisions name;
- every decision names all of its items (``count`` = items named: no silent cap);
- every pinned item is served; every served item is a logged candidate or pinned;
- independently of the trace: no served item of a suppressed brand, at most one
  item per variant group, the brand cap held (pins aside).

Any contradiction is printed and the script exits 1.

    .venv/bin/python benchmarks/traces.py [--slates 10000 --products 1000
        --people 1000 --history-days 35 --seed 7]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.preview import Recording, governed_shop  # noqa: E402  (the repository root is on sys.path)

from shelfwise.catalog import CatalogSnapshot  # noqa: E402
from shelfwise.config import Settings, load_settings  # noqa: E402
from shelfwise.rules.model import RULE  # noqa: E402
from shelfwise.serving.decisions import Decision  # noqa: E402
from shelfwise.simulate import SimulationSpec  # noqa: E402
from shelfwise.simulate.replay import (  # noqa: E402
    draw_traffic,
    replay_sessions,
)

DROPPING = frozenset({"removed", "deduped", "capped", "remove"})
BRAND_CAP = 2


def extra_rules(snapshot: CatalogSnapshot) -> tuple[list[dict[str, Any]], set[str]]:
    """Pins (products with variant siblings), caps and two suppressed brands."""
    products = snapshot.products
    brands = Counter(p.brand for p in products if p.brand)
    suppressed = {b for b, _ in brands.most_common()[2:4]}
    groups = Counter(p.variant_group for p in products if p.variant_group)
    pinnable = {
        p.variant_group: p.product_id  # one product per group: two pins, two groups
        for p in products
        if p.variant_group
        and groups[p.variant_group] > 1
        and p.brand not in suppressed
        and p.is_available
        and (p.shipping_sla_days or 0) <= 10
    }
    pins = list(pinnable.values())[:2]
    bodies: list[dict[str, Any]] = [
        {"id": "pin-home", "type": "pin", "product_id": pins[0], "position": 1},
        {
            "id": "pin-product",
            "type": "pin",
            "product_id": pins[1],
            "position": 3,
            "scope": {"placements": ["product_page"]},
        },
        {"id": "cap-brand", "type": "cap", "attribute": "brand", "max_items": BRAND_CAP},
        {"id": "cap-category", "type": "cap", "attribute": "category", "max_items": 4, "depth": 1},
        {"id": "paused", "type": "suppress", "attribute": "brand", "values": sorted(suppressed)},
    ]
    return [{**b, "reason": "trace benchmark"} for b in bodies], suppressed


def contradictions(d: Decision, snapshot: CatalogSnapshot, suppressed: set[str]) -> list[str]:
    """What is wrong with one logged slate's trace (empty: nothing)."""
    trace = d.trace or {}
    served = [str(i["product_id"]) for i in d.items]
    shown = set(served)
    out: list[str] = []
    dropped: list[str] = []
    drops: Counter[str] = Counter()
    pinned: set[str] = set()
    for r in trace.get("rules", ()):
        items = list(r.get("items") or ())
        if r.get("count") != len(items):
            out.append(f"{r['rule']} {r['action']}: count {r.get('count')} names {len(items)}")
        if r["action"] in DROPPING or r["action"] == "pin_blocked":
            both = shown & set(items)
            if both:
                out.append(f"{r['rule']} {r['action']} served item(s) {sorted(both)}")
        if r["action"] in DROPPING:
            dropped += items
            drops[r["rule"]] += len(items)
        if r["action"] == "pinned":
            pinned |= set(items)
    twice = [p for p, n in Counter(dropped).items() if n > 1]
    if twice:
        out.append(f"dropped more than once: {twice}")
    counted = {k: v for k, v in (trace.get("drops") or {}).items() if v}
    if counted != dict(drops):
        out.append(f"drop counts {counted} != items dropped {dict(drops)}")
    if pinned - shown:
        out.append(f"pinned but not served: {sorted(pinned - shown)}")
    pool = {str(p) for p, _ in trace.get("pool", ())}
    if shown - pool - pinned:
        out.append(f"served, neither a candidate nor pinned: {sorted(shown - pool - pinned)}")
    products = [snapshot.products[snapshot.vocab[p]] for p in served if p in snapshot.vocab]
    if any(p.brand in suppressed for p in products):
        out.append("a suppressed brand served")
    groups = [p.variant_group for p in products if p.variant_group]
    if len(groups) != len(set(groups)):  # pins of one group would be the merchant's choice
        out.append(f"two items of a variant group: {groups}")
    brands = Counter(p.brand for p in products if p.brand and p.product_id not in pinned)
    if brands and max(brands.values()) > BRAND_CAP:
        out.append(f"brand cap broken: {brands.most_common(1)}")
    return out


def measure(
    settings: Settings, spec: SimulationSpec, slates: int, batch: int = 300
) -> dict[str, Any]:
    began = time.perf_counter()
    world, shop = governed_shop(settings, spec)
    history_days = spec.days - 1
    try:
        bodies, suppressed = extra_rules(shop.snapshot)
        for body in bodies:
            shop.rules.store.save(RULE.validate_python(body), who="benchmark", why="traces")
        setup = time.perf_counter() - began
        t = time.perf_counter()
        recording = Recording(shop)
        seed = spec.seed
        while len(recording.served) < slates:
            traffic = draw_traffic(world, batch, seed, history_days, 1)
            replay_sessions(world, recording, traffic)
            seed += 1
        serving = time.perf_counter() - t
        shop.decisions.flush()
        logged = shop.decisions.recent(limit=len(recording.served))
        found = {d.rec_id: contradictions(d, shop.snapshot, suppressed) for d in logged}
        actions = Counter(r["action"] for d in logged for r in (d.trace or {}).get("rules", ()))
    finally:
        shop.close()
    bad = {k: v for k, v in found.items() if v}
    return {
        "slates": len(logged),
        "placements": dict(Counter(d.placement for d in logged)),
        "decisions_by_action": dict(actions),
        "pinned_slates": sum(
            1
            for d in logged
            if any(r["action"] == "pinned" for r in (d.trace or {}).get("rules", ()))
        ),
        "contradictions": sum(len(v) for v in bad.values()),
        "slates_with_contradictions": len(bad),
        "examples": dict(list(bad.items())[:10]),
        "setup_seconds": round(setup, 1),
        "serving_seconds": round(serving, 1),
    }


def show(result: dict[str, Any]) -> None:
    print(f"{result['slates']:,} slates checked: {result['placements']}")
    print(f"rule decisions by action: {result['decisions_by_action']}")
    print(f"slates with a pin served: {result['pinned_slates']:,}")
    print(
        f"contradictions: {result['contradictions']} "
        f"(in {result['slates_with_contradictions']} slates)"
    )
    for rec_id, problems in result["examples"].items():
        print(f"  {rec_id}: {'; '.join(problems)}")
    print(f"setup {result['setup_seconds']} s, serving {result['serving_seconds']} s")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slates", type=int, default=10_000)
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--history-days", type=int, default=35)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            database_url=f"sqlite:///{Path(tmp) / 'traces.db'}", model_dir=Path(tmp) / "models"
        )
        spec = SimulationSpec(
            seed=args.seed, products=args.products, people=args.people, days=args.history_days + 1
        )
        result = measure(settings, spec, args.slates)
    show(result)
    if result["contradictions"] or result["slates"] < args.slates:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
