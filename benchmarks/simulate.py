"""Speed and policy separation of the simulated store.

Measures (1) catalog generation at 2,000 and 100,000 products against a
baseline that validates the same rows one by one with pydantic, (2) a few
weeks of history against the cost of parsing the same events with the event
contract, and (3) the true expected revenue per request of the oracle,
popularity and random policies on the same requests.

    .venv/bin/python benchmarks/simulate.py [--people 2000 --days 28 --products 2000]
"""

from __future__ import annotations

import argparse
import time

from shelfwise.catalog.model import Product
from shelfwise.contracts.events import parse_event
from shelfwise.simulate import (
    CatalogSpec,
    OraclePolicy,
    RandomPolicy,
    SimulationSpec,
    build_world,
    compare_policies,
    generate_store,
    popularity_policy,
    sample_requests,
    simulate,
)


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    """Result and CPU seconds of this process (wall time on a shared machine
    measures the neighbours too); the wall time is printed alongside."""
    began, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    spent = time.process_time() - cpu
    print(f"  ({fn.__name__}: {spent:.2f} s CPU, {time.perf_counter() - began:.2f} s wall)")
    return out, spent


def catalog(n: int) -> None:
    store, gen = timed(generate_store, CatalogSpec(n_products=n))
    _, validate = timed(lambda: [Product.model_validate(r) for r in store.records])
    print(
        f"catalog {n:>7,} products: {gen:6.2f} s generated "
        f"({n / gen:,.0f}/s), {validate:6.2f} s to validate one by one "
        f"(ratio {gen / validate:.2f})"
    )


def history(people: int, days: int, products: int) -> None:
    spec = SimulationSpec(products=products, people=people, days=days)
    sim, gen = timed(simulate, spec)
    _, parse = timed(lambda: [parse_event(e) for e in sim.events])
    print(
        f"history {people:,} people x {days} days ({products:,} products): {sim.sessions:,} "
        f"sessions, {len(sim.events):,} events, {sim.orders:,} orders in {gen:.2f} s "
        f"({len(sim.events) / gen:,.0f} events/s); parsing them: {parse:.2f} s "
        f"(ratio {gen / parse:.2f})"
    )


def policies(requests: int) -> None:
    world = build_world(SimulationSpec(products=2_000, people=2_000, days=28))
    reqs = sample_requests(world, requests, seed=1)
    arms = [
        OraclePolicy(world),
        popularity_policy(world.ids, world.popularity()),
        RandomPolicy(world.ids, seed=2),
    ]
    out = compare_policies(world, arms, reqs, seed=3)
    base = out["random"].expected_revenue_per_request
    for name, r in out.items():
        print(
            f"policy {name:10} expected revenue/request {r.expected_revenue_per_request:7.3f} "
            f"({r.expected_revenue_per_request / base:5.1f}x random); observed: "
            f"{r.clicks} clicks, {r.orders} orders, {r.revenue:,.2f} revenue"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--requests", type=int, default=2_000)
    args = parser.parse_args()
    catalog(2_000)
    catalog(100_000)
    history(args.people, args.days, args.products)
    policies(args.requests)
