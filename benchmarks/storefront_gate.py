"""The storefront key's cost on the hot path: ``GET /v1/recommendations`` straight
through the app's ASGI callable (no sockets), same process, same slates.

    .venv/bin/python benchmarks/storefront_gate.py [--requests 20000] [--rounds 5]
        [--redis redis://127.0.0.1:6379/0]

A ``read`` key (no gate: the baseline) against a ``storefront`` key given in the
header and as ``?key=``, with the rate limits counted in memory and, with
``--redis``, in Redis (in batches, the default, and at every request); with an
``Origin`` (CORS answers) and without. The
slates come from the slate cache (an anonymous product page asked again), the
cheapest slate there is, so the gate's share is as large as it can be. CPU time
per request (process time), median over rounds, and the ratio to the baseline of
the same round. Also the gate alone (``StorefrontGate.admit``), per call.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shelfwise.access import Principal  # noqa: E402
from shelfwise.api import create_app  # noqa: E402
from shelfwise.api.storefront import StorefrontGate  # noqa: E402
from shelfwise.config import ApiKey, load_settings  # noqa: E402
from shelfwise.runtime import Runtime  # noqa: E402
from shelfwise.simulate import CatalogSpec, generate_catalog  # noqa: E402

READ, SHOP = "bench-read-key", "bench-storefront-key"
ORIGIN = "https://shop.example"
LIMITS = {"storefront_rate_limit": "1000000000/hour", "storefront_ip_rate_limit": "1000000000/hour"}


def _scope(query: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/v1/recommendations",
        "raw_path": b"/v1/recommendations",
        "root_path": "",
        "query_string": query.encode(),
        "headers": headers,
        "client": ("10.0.0.7", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def _run(app: Any, scope: dict[str, Any], n: int) -> float:
    """CPU seconds per request over ``n`` requests (every answer checked: 200)."""
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    t = time.process_time()
    for _ in range(n):
        await app(dict(scope, state={}), receive, send)
    spent = time.process_time() - t
    assert set(statuses) == {200}, set(statuses)
    return spent / n


def _variants(product: str) -> dict[str, tuple[str, list[tuple[bytes, bytes]]]]:
    q = f"placement=product_similar&item={product}"
    origin = [(b"origin", ORIGIN.encode())]
    return {
        "read key (baseline)": (q, [(b"x-api-key", READ.encode())]),
        "read key + Origin (CORS)": (q, [(b"x-api-key", READ.encode()), *origin]),
        "storefront key (header)": (q, [(b"x-api-key", SHOP.encode())]),
        "storefront key (?key=) + Origin": (f"{q}&key={SHOP}", origin),
    }


def measure(settings: Any, requests: int, rounds: int, label: str) -> dict[str, float]:
    app = create_app(settings)
    out: dict[str, list[float]] = {}

    async def go() -> None:
        async with app.router.lifespan_context(app):
            rt = app.state.runtime
            product = rt.catalog.page(0, 1)[0].product_id
            variants = _variants(product)
            for scope in variants.values():  # warm: slate cache, keyring, limiter keys
                await _run(app, _scope(*scope), 200)
            for _ in range(rounds):
                for name, scope in variants.items():
                    out.setdefault(name, []).append(await _run(app, _scope(*scope), requests))

    asyncio.run(go())
    base = statistics.median(out["read key (baseline)"])
    print(f"\n{label}: CPU per request, median of {rounds} rounds of {requests}")
    result = {}
    for name, values in out.items():
        median = statistics.median(values)
        result[name] = median
        print(f"  {name:<34} {median * 1e6:7.1f} µs   x{median / base:.3f}")
    return result


def gate_alone(gate: StorefrontGate, n: int, label: str) -> float:
    who = Principal("shop", frozenset({"storefront"}), frozenset({ORIGIN}), None, "k1")
    call: Callable[[], None] = lambda: gate.admit(who, ORIGIN, "10.0.0.7")  # noqa: E731
    for _ in range(200):
        call()
    t = time.process_time()
    w = time.perf_counter()
    for _ in range(n):
        call()
    cpu, wall = (time.process_time() - t) / n, (time.perf_counter() - w) / n
    print(f"  gate alone, {label:<10} {cpu * 1e6:7.1f} µs CPU, {wall * 1e6:7.1f} µs wall per call")
    return cpu


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--requests", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--products", type=int, default=2_000)
    ap.add_argument("--redis", default=None, help="also count in this Redis")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="shelfwise-bench-gate-"))
    keys = (
        ApiKey(name="read", secret=READ, roles=("read",)),
        ApiKey(name="shop", secret=SHOP, roles=("storefront",), origins=(ORIGIN,)),
    )
    settings = load_settings(
        database_url=f"sqlite:///{work / 'bench.db'}",
        model_dir=work / "models",
        model_watch_seconds=0,
        api_keys=keys,
        decision_trace="none",
        **LIMITS,
    )
    rt = Runtime.open(settings, load=False)
    rt.catalog.upsert(generate_catalog(CatalogSpec(n_products=args.products, seed=1)), "bench")
    rt.close()
    measure(settings, args.requests, args.rounds, "limits counted in memory")
    print()
    gate_alone(StorefrontGate.from_settings(settings), args.requests, "memory")
    if args.redis:
        for every, how in ((0.1, "in batches every 0.1 s (default)"), (0.0, "at every request")):
            shared = settings.model_copy(
                update={
                    "redis_url": args.redis,
                    "redis_prefix": f"bench-{uuid.uuid4().hex[:8]}",
                    "storefront_limit_sync_seconds": every,
                }
            )
            measure(shared, args.requests // 4, args.rounds, f"limits counted in Redis {how}")
            print()
            gate = StorefrontGate.from_settings(shared)
            gate_alone(gate, args.requests // 4, "redis")
            gate.close()


if __name__ == "__main__":
    main()
