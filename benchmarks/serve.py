"""Serving speed: the learned ranker's placements against a hello-world ceiling, same app, same run.

    .venv/bin/python benchmarks/serve.py [--products 2000] [--seconds 5] [--rounds 3]
        [--connections 16] [--workers 2]
    .venv/bin/python benchmarks/serve.py --no-bundle [--products 50000] [--stock-feed 20]

By default, the real thing: the simulated store of ``benchmarks/learned_store.py``
(2,000 products, 2,000 shoppers, 84 days of history through the ingestion path, a
rulebook of 30 rules in force, a trained bundle with the learned ranker, its trees
compiled). In process (``learned_profile.in_process_learned``): personal home
(known buyers), product pages (every product distinct) and carts (a known buyer
and a cart item), every context new, then the same contexts again. Over HTTP
(``learned_runs``): ``/health`` (the ceiling), personal home (known buyers drawn
uniformly), product pages (the catalog in a shuffled order: every product once
before any repeats), the popularity mix (Zipf(1) product pages) and carts; before
each run a few of its requests are asked again with ``explain=true`` and the run
fails unless the learned ranker answered every one. Ratios against the same
server's ``/health``, round by round.

``--no-bundle``: the earlier benchmark, without a model bundle (degraded mode and
the slate cache):

1. In process: the whole pipeline (context -> candidates -> safety -> rank ->
   arrange -> slate, decision log included) for ``product_similar`` and for a
   500-candidate variant of it, on distinct viewed products (every slate
   computed); wall and CPU (thread time) p50/p99 per request; then the same
   products again (served from the slate cache), then with a cart item
   (personal: computed every time).
2. Over HTTP: ``shelfwise serve --workers 2`` on 127.0.0.1 with SQLite; a
   closed-loop load generator (asyncio, one keep-alive HTTP/1.1 stream per
   connection, so it costs the shared cores little) keeps ``--connections``
   requests in flight against ``/health`` (the ceiling), then against
   ``/v1/recommendations?placement=product_similar&item=…`` with uniformly
   drawn products (a new set each round: cache misses), with a popularity-skewed
   mix (anonymous product pages: the slate cache serves the popular ones), the
   same mix while a stock feed PATCHes ``--stock-feed`` products a second through
   the catalog API (popular products, as what sells changes stock: each change
   drops the kept slates made of that product), and the same mix plus a cart item
   (personal: never cached); ``--rounds`` rounds of the five, requests/s and
   p50/p99 (medians over rounds), the ratios to the hello world and the slate
   cache's hit share per run (from /metrics).

The catalog (``shelfwise.simulate.generate_catalog``) is cached in ``--workdir``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shelfwise.config import ApiKey, load_settings  # noqa: E402
from shelfwise.pipeline import RecommendRequest  # noqa: E402
from shelfwise.runtime import Runtime  # noqa: E402
from shelfwise.simulate import CatalogSpec, generate_catalog  # noqa: E402
from shelfwise.store.tables import decisions  # noqa: E402

KEY = "bench-read-key"
FEED_KEY = "bench-feed-key"
WIDE = """
placements:
  - name: wide
    page: product
    requires_item: true
    sources: {content: 1.0, session: 0.3}
    fallback: [popular]
    depth: 500
    rule_scope: product_page
    objective: {engagement: 0.8, revenue: 0.2}
    k: 10
    max_candidates: 500
"""


def prepare(workdir: Path, n: int) -> Path:
    db = workdir / f"catalog-{n}.db"
    settings = load_settings(database_url=f"sqlite:///{db}")
    rt = Runtime.open(settings, load=False)
    try:
        if rt.catalog.count() != n:
            print(f"generating a catalog of {n:,} products (cached in {db})", flush=True)
            rt.catalog.upsert(generate_catalog(CatalogSpec(n_products=n, seed=11)), source="bench")
        with rt.db.engine.begin() as conn:  # every run starts from an empty decision log
            conn.execute(decisions.delete())
        with rt.db.engine.connect() as conn:
            conn.exec_driver_sql("VACUUM")
    finally:
        rt.close()
    return db


def pct(lat: list[float]) -> tuple[float, float]:
    a = np.array(lat) * 1e3
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def in_process(db: Path, workdir: Path, requests: int) -> dict[str, object]:
    wide = workdir / "wide.yaml"
    wide.write_text(WIDE)
    out: dict[str, object] = {}
    for placement, file in (("product_similar", None), ("wide", wide)):
        settings = load_settings(
            database_url=f"sqlite:///{db}",
            placements_file=file,
            decision_trace="sampled",
            decision_trace_sample_rate=0.01,
        )
        rt = Runtime.open(settings)
        rec = rt.recommender
        gc.collect()
        gc.freeze()  # as a served worker does after start-up (api/app.py)
        rng = np.random.default_rng(1)
        ids = rt.snapshot.ids
        drawn = rng.permutation(len(ids))[: requests + 200]  # distinct viewed products
        reqs = [RecommendRequest(placement=placement, item=(ids[int(i)],)) for i in drawn]
        for r in reqs[requests:]:
            rec.recommend(r)  # warm-up on other products
        pool = []
        figures: dict[str, object] = {}
        out[placement] = figures
        # Every slate computed (distinct products), the same products again (served
        # from the slate cache), then with a cart item: personal, computed every time.
        carts = [r.model_copy(update={"cart": reqs[-1 - n].item}) for n, r in enumerate(reqs)]
        for label, batch in (
            ("computed", reqs[:requests]),
            ("slate_cache_hit", reqs[:requests]),
            ("personal_cart", carts[:requests]),
        ):
            lat, cpu = [], []
            for r in batch:
                t, c = time.perf_counter(), time.thread_time()
                rec.recommend(r)
                cpu.append(time.thread_time() - c)
                lat.append(time.perf_counter() - t)
            p50, p99 = pct(lat)
            cpu50, cpu99 = pct(cpu)
            figures[label] = {
                "p50_ms": round(p50, 3),
                "p99_ms": round(p99, 3),
                "cpu_p50_ms": round(cpu50, 3),
                "cpu_p99_ms": round(cpu99, 3),
            }
        for r in reqs[:200]:
            trace = rec.recommend(r.model_copy(update={"explain": True}))["trace"]
            pool.append(sum(trace["candidates"].values()))
        figures["candidates"] = int(np.mean(pool))
        rt.close()
    return out


async def _one_conn(
    host: str, port: int, paths: list[str], stop: float, lat: list[float], start: int = 0
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = start  # each connection walks the paths from its own offset
    try:
        while time.perf_counter() < stop:
            path = paths[i % len(paths)]
            i += 1
            t = time.perf_counter()
            writer.write(
                f"GET {path} HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {KEY}\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}")
            lat.append(time.perf_counter() - t)
    finally:
        writer.close()


async def _stock_feed(
    host: str, port: int, changes: list[tuple[str, int]], per_second: float, stop: float
) -> int:
    """PATCH one product's stock every 1/``per_second`` s on its own connection (the
    catalog API, as a store's stock feed would); returns how many were applied."""
    reader, writer = await asyncio.open_connection(host, port)
    done = 0
    try:
        start = time.perf_counter()
        while time.perf_counter() < stop:
            product_id, qty = changes[done % len(changes)]
            body = json.dumps({"stock_qty": qty}).encode()
            writer.write(
                f"PATCH /v1/products/{product_id} HTTP/1.1\r\nHost: {host}\r\n"
                f"X-API-Key: {FEED_KEY}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            if int(head[9:12]) != 200:
                raise RuntimeError(f"stock feed: PATCH {product_id} answered {head[9:12]!r}")
            done += 1
            await asyncio.sleep(max(0.0, start + done / per_second - time.perf_counter()))
    finally:
        writer.close()
    return done


async def _load(
    host: str,
    port: int,
    paths: list[str],
    seconds: float,
    conns: int,
    warm_paths: list[str],
    server_pid: int,
    feed: tuple[list[tuple[str, int]], float] | None = None,
) -> dict[str, float]:
    """Warm up for a second on ``warm_paths``, then measure on ``paths`` (other items:
    the warm-up must not fill the server's per-item candidate memo for the run)."""
    warm: list[float] = []
    stride = max(1, len(paths) // conns)
    await asyncio.gather(
        *[
            _one_conn(host, port, warm_paths, time.perf_counter() + 1.0, warm, c * stride)
            for c in range(conns)
        ]
    )
    before = cache_lookups(port)
    cpu = tree_cpu(server_pid)
    lat: list[float] = []
    start = time.perf_counter()
    stop = start + seconds
    feeding = [] if feed is None else [_stock_feed(host, port, feed[0], feed[1], stop)]
    got = await asyncio.gather(
        *[_one_conn(host, port, paths, stop, lat, c * stride) for c in range(conns)], *feeding
    )
    elapsed = time.perf_counter() - start
    cpu = tree_cpu(server_pid) - cpu
    after = cache_lookups(port)
    p50, p99 = pct(lat)
    lookups = sum(after.values()) - sum(before.values())
    return {
        "requests_per_s": round(len(lat) / elapsed, 1),
        "p50_ms": round(p50, 2),
        "p99_ms": round(p99, 2),
        "server_cpu_ms_per_request": round(cpu * 1e3 / max(len(lat), 1), 3),
        "slate_cache_hit_share": round((after["hit"] - before["hit"]) / max(lookups, 1), 3),
        "stock_changes_per_s": round(got[-1] / elapsed, 1) if feed is not None else 0.0,
    }


# A run's measured paths, its warm-up paths and its stock feed (changes, per second).
Mix = tuple[list[str], list[str], tuple[list[tuple[str, int]], float] | None]


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a live process and its descendants (Linux /proc)."""
    total, todo = 0.0, [pid]
    tick = os.sysconf("SC_CLK_TCK")
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def cache_lookups(port: int) -> dict[str, float]:
    """The server's slate cache lookups so far (every worker's), by result."""
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"X-API-Key": KEY})
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read().decode()
    out = {"hit": 0.0, "miss": 0.0, "bypass": 0.0}
    for line in text.splitlines():
        if line.startswith("shelfwise_slate_cache_total{"):
            labels, value = line.rsplit(" ", 1)
            for result in out:
                if f'result="{result}"' in labels:
                    out[result] += float(value)
    return out


def served(
    db: Path,
    seconds: float,
    conns: int,
    workers: int,
    rounds: int,
    feed_rate: float,
    learned: Path | None = None,
) -> dict[str, object]:
    """Over HTTP; ``learned``: the learned store's folder (its bundle and rulebook), whose
    mixes are personal home, product pages, carts and the popularity mix."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHELFWISE_")}
    env.update(
        SHELFWISE_DATABASE_URL=f"sqlite:///{db}",
        SHELFWISE_API_KEYS=json.dumps(
            [
                {
                    "name": "bench",
                    "sha256": ApiKey(name="b", secret=KEY, roles=("read",)).digest(),
                    "roles": ["read"],
                },
                {
                    "name": "feed",
                    "sha256": ApiKey(name="f", secret=FEED_KEY, roles=("merchandiser",)).digest(),
                    "roles": ["merchandiser"],
                },
            ]
        ),
        SHELFWISE_DECISION_TRACE="sampled",
        SHELFWISE_DECISION_TRACE_SAMPLE_RATE="0.01",
        SHELFWISE_LOG_LEVEL="warning",
    )
    if learned is not None:
        env["SHELFWISE_MODEL_DIR"] = str(learned / "models")
    cmd = [
        sys.executable,
        "-m",
        "shelfwise.cli",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        started = time.monotonic()
        deadline = started + 180
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                    c.sendall(b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
                    if b" 200 " in c.recv(200):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("server did not start")
            time.sleep(0.3)
        # /ready answers once one worker is up; the others load the catalog at the same
        # time: give them half as long again before measuring.
        time.sleep(max(2.0, (time.monotonic() - started) / 2))
        rt = Runtime.open(load_settings(database_url=f"sqlite:///{db}"), migrate=False)
        ids = rt.snapshot.ids
        rt.close()
        if learned is not None:
            runs = learned_runs(port, ids, learned, seconds, conns, rounds, proc.pid)
            return summary(runs, workers, conns, rounds)
        rng = np.random.default_rng(2)

        def paths(items: Sequence[int], carts: Sequence[int] = ()) -> list[str]:
            base = "/v1/recommendations?placement=product_similar&item="
            if not carts:
                return [f"{base}{ids[i]}" for i in items]
            return [f"{base}{ids[i]}&cart={ids[c]}" for i, c in zip(items, carts, strict=True)]

        # Viewed products drawn uniformly, all distinct within a round and a new set each
        # round (the slate cache holds fewer than a round's products: no hits to speak
        # of), and drawn by a Zipf(1) popularity over a shuffled catalog, as product pages
        # are visited (popular products' slates are kept). The personal mix is the
        # popularity mix with a product in the cart (also Zipf-drawn): nothing personal is
        # ever served from the cache, so every one of its slates is computed.
        order = rng.permutation(len(ids)).tolist()
        weight = 1.0 / np.arange(1, len(ids) + 1)
        shuffled = rng.permutation(len(ids))
        drawn = shuffled[rng.choice(len(ids), 40_000, p=weight / weight.sum())].tolist()
        skewed = paths(drawn[:20_000])
        personal = paths(drawn[:20_000], drawn[20_000:])
        # The stock feed changes products drawn by the same popularity (what sells
        # changes stock), each to a new quantity, never 0 (the slate keeps its length).
        restocks = [(ids[i], 1 + n % 7) for n, i in enumerate(drawn[::-1][:5_000])]
        runs: dict[str, list[dict[str, float]]] = {}
        # Rounds of back-to-back runs: each ratio compares neighbouring windows, so a
        # neighbour's burst on the shared machine moves one round, not the median.
        for r in range(rounds):
            span = len(order) // rounds
            mine = order[r * span : (r + 1) * span]
            mixes: dict[str, Mix] = {
                "hello_world": (["/health"], ["/health"], None),
                "product_similar_uniform": (paths(mine[1000:]), paths(mine[:1000]), None),
                "product_similar_popularity_mix": (skewed[:15_000], skewed[15_000:], None),
                "product_similar_popularity_mix_stock_feed": (
                    skewed[:15_000],
                    skewed[15_000:],
                    (restocks[r::rounds], feed_rate),
                ),
                "personal_cart_popularity_mix": (personal[:15_000], personal[15_000:], None),
            }
            for name, (measured, warm, feed) in mixes.items():
                if feed is not None and feed_rate <= 0:
                    continue
                runs.setdefault(name, []).append(
                    asyncio.run(
                        _load("127.0.0.1", port, measured, seconds, conns, warm, proc.pid, feed)
                    )
                )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return summary(runs, workers, conns, rounds)


def ranker_of(port: int, path: str) -> str:
    """Which ranker answered ``path`` (asked again with ``explain=true``)."""
    import urllib.request

    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}&explain=true", headers={"X-API-Key": KEY}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        kind: str = json.loads(r.read())["trace"]["ranker"]["kind"]
    return kind


def learned_runs(
    port: int, ids: list[str], folder: Path, seconds: float, conns: int, rounds: int, pid: int
) -> dict[str, list[dict[str, float]]]:
    """The learned store's mixes: personal home (known buyers drawn uniformly), product
    pages (the catalog in a shuffled order, every product once before any repeats), the
    same pages by a Zipf(1) popularity, and carts (a known buyer, a Zipf-drawn cart item).
    Before each run, a few of its requests are asked again with ``explain=true``: the run
    fails unless the learned ranker answered every one."""
    from learned_profile import known_buyers, open_store

    rt = open_store(folder)
    try:
        people = known_buyers(rt)
    finally:
        rt.close()
    rng = np.random.default_rng(2)
    n = len(ids)
    who = [people[int(i)] for i in rng.integers(0, len(people), 40_000)]
    weight = 1.0 / np.arange(1, n + 1)
    shuffled = rng.permutation(n)
    zipf = shuffled[rng.choice(n, 40_000, p=weight / weight.sum())].tolist()
    base = "/v1/recommendations?placement="
    home = [f"{base}home&person={p}" for p in who]
    pages = [f"{base}product_similar&item={ids[i]}" for i in rng.permutation(n).tolist()]
    skewed = [f"{base}product_similar&item={ids[i]}" for i in zipf]
    carts = [f"{base}cart&person={p}&cart={ids[i]}" for p, i in zip(who[::-1], zipf, strict=True)]
    warm = pages[:50]  # the code paths warm; nearly every measured page is new to its worker
    runs: dict[str, list[dict[str, float]]] = {}
    for r in range(rounds):
        mixes: dict[str, tuple[list[str], list[str]]] = {
            "hello_world": (["/health"], ["/health"]),
            "home_personal": (home[20_000:], home[:20_000]),
            "product_similar_uniform": (pages[r * n // rounds :] + pages[: r * n // rounds], warm),
            "product_similar_popularity_mix": (skewed[:20_000], skewed[20_000:]),
            "cart_personal": (carts[:20_000], carts[20_000:]),
        }
        for name, (measured, warm) in mixes.items():
            if name != "hello_world":
                kinds = {ranker_of(port, p) for p in measured[:: max(1, len(measured) // 5)][:5]}
                if kinds != {"learned"}:
                    raise SystemExit(f"{name}: the {sorted(kinds)} ranker answered, not learned")
            got = asyncio.run(_load("127.0.0.1", port, measured, seconds, conns, warm, pid))
            got["learned_ranker_checked"] = float(name != "hello_world")
            runs.setdefault(name, []).append(got)
    return runs


def summary(
    runs: dict[str, list[dict[str, float]]], workers: int, conns: int, rounds: int
) -> dict[str, object]:
    out: dict[str, object] = {"workers": workers, "connections": conns, "rounds": rounds}
    hello = runs["hello_world"]
    for name, got in runs.items():
        out[name] = {k: float(np.median([g[k] for g in got])) for k in got[0]}
        if name != "hello_world":
            shares = [
                g["requests_per_s"] / h["requests_per_s"] for g, h in zip(got, hello, strict=True)
            ]
            out[f"share_of_hello_world ({name})"] = {
                "median": round(float(np.median(shares)), 3),
                "per_round": [round(x, 3) for x in shares],
            }
            out[f"slate_cache_hit_share ({name})"] = [g["slate_cache_hit_share"] for g in got]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--products", type=int, default=50_000, help="50,000 without a bundle; 2,000 with one"
    )
    ap.add_argument("--people", type=int, default=2_000, help="the learned store's shoppers")
    ap.add_argument(
        "--days", type=int, default=None, help="the learned store's days of history (84)"
    )
    ap.add_argument("--seconds", type=float, default=5.0, help="per run (each mix, each round)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--stock-feed",
        type=float,
        default=20.0,
        help="stock changes per second (PATCH over HTTP) during the popularity mix's twin run",
    )
    ap.add_argument("--requests", type=int, default=3000, help="in-process requests per placement")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/shelfwise-bench-serve"))
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument(
        "--no-bundle",
        action="store_true",
        help="the earlier benchmark: a generated catalog without a model bundle (degraded mode)",
    )
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if not args.no_bundle:
        learned_main(args)
        return
    db = prepare(args.workdir, args.products)
    result: dict[str, object] = {
        "products": args.products,
        "in_process": in_process(db, args.workdir, args.requests),
    }
    if not args.skip_http:
        result["http"] = served(
            db, args.seconds, args.connections, args.workers, args.rounds, args.stock_feed
        )
    print(json.dumps(result, indent=2))


def learned_main(args: argparse.Namespace) -> None:
    from learned_profile import in_process_learned
    from learned_store import DAYS, prepare_learned

    products = args.products if args.products != 50_000 else 2_000
    days = DAYS if args.days is None else args.days
    folder = prepare_learned(args.workdir, products, args.people, days)
    db = folder / "store.db"
    result: dict[str, object] = {
        "products": products,
        "store": json.loads((folder / "ready.json").read_text()),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "in_process": in_process_learned(folder, args.requests),
    }
    if not args.skip_http:
        result["http"] = served(
            db, args.seconds, args.connections, args.workers, args.rounds, 0.0, learned=folder
        )
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
