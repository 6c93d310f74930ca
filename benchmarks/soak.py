"""Soak: a bounded mixed load on a real ``shelfwise serve`` for a set time; errors, latency, memory.

    .venv/bin/python benchmarks/soak.py [--seconds 600] [--json out.json]

Prepares a SQLite store in ``--workdir`` (a generated catalog, a few thousand
past events, a trained and promoted bundle), starts ``shelfwise serve`` on
127.0.0.1 and keeps, at fixed rates (no bursts; a slot missed is skipped):

* recommendations on the home, product, cart and email placements
  (``--rec-rate`` per second over two connections, half with a live session);
* event batches (``--ingest-rate`` batches of ``--batch`` events per second,
  on a bounded pool of shoppers and sessions, as a store in steady state);
* rule edits (``--rule-rate`` per second: PUT with If-Match over a few rules);
* a model reload (``POST /v1/models/reload``) every ``--reload-every`` seconds.

Any answer other than 2xx, and any transport error, is an error (there must
be none). The server's resident memory (VmRSS of it and its children) is
sampled every ``--sample-every`` seconds; after ``--warmup`` seconds the run is
cut in two halves and the growth of each is reported: memory levels off when
the second half grows by less than ``max(8 MB, half the first half's growth)``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shelfwise.config import ApiKey, load_settings  # noqa: E402
from shelfwise.contracts.events import OrderLine, ProductView, Purchase  # noqa: E402
from shelfwise.contracts.eventstore import EventStore  # noqa: E402
from shelfwise.runtime import Runtime  # noqa: E402
from shelfwise.simulate import CatalogSpec, generate_catalog  # noqa: E402
from shelfwise.training.job import train  # noqa: E402

KEYS = {
    "read": "soak-read-key",
    "ingest": "soak-ingest-key",
    "merchandiser": "soak-merch-key",
    "admin": "soak-admin-key",
}
RULES = 4
SHOPPERS = 2_000  # the steady-state pool: live sessions stay bounded


# --- the store ---------------------------------------------------------------


def prepare(workdir: Path, products: int, seed: int = 5) -> list[str]:
    """A fresh store with a catalog, past events and a promoted bundle; the product ids."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    settings = load_settings(
        database_url=f"sqlite:///{workdir / 'soak.db'}", model_dir=workdir / "models"
    )
    rt = Runtime.open(settings, load=False)
    try:
        catalog = generate_catalog(CatalogSpec(n_products=products, seed=seed))
        rt.catalog.upsert(catalog, source="soak")
        ids = [p.product_id for p in catalog]
        rng = random.Random(seed)
        start = datetime.now(UTC) - timedelta(days=30)
        past: list[ProductView | Purchase] = []
        for n in range(600):
            for order in range(3):
                at = start + timedelta(days=rng.uniform(0, 29))
                basket = rng.sample(ids[(n % 20) * 50 : (n % 20) * 50 + 60], 2)
                session = f"past-{n}-{order}"
                past.extend(
                    ProductView(
                        event_id=f"pv-{n}-{order}-{pid}",
                        occurred_at=at - timedelta(minutes=3),
                        anonymous_id=f"past-{n}",
                        session_id=session,
                        product_id=pid,
                    )
                    for pid in basket
                )
                past.append(
                    Purchase(
                        event_id=f"po-{n}-{order}",
                        occurred_at=at,
                        anonymous_id=f"past-{n}",
                        session_id=session,
                        order_id=f"po-{n}-{order}",
                        lines=tuple(
                            OrderLine(product_id=pid, quantity=1, unit_price=10.0) for pid in basket
                        ),
                        currency="EUR",
                        revenue=20.0,
                    )
                )
        EventStore(rt.db).append(past)
        rt.snapshot.load()
        train(rt, force=True)
    finally:
        rt.close()
    return ids


def server_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHELFWISE_")}
    keys = [
        {
            "name": role,
            "sha256": ApiKey(name=role, secret=s, roles=(role,)).digest(),
            "roles": [role],
        }  # type: ignore[arg-type]
        for role, s in KEYS.items()
    ]
    env.update(
        SHELFWISE_DATABASE_URL=f"sqlite:///{workdir / 'soak.db'}",
        SHELFWISE_MODEL_DIR=str(workdir / "models"),
        SHELFWISE_API_KEYS=json.dumps(keys),
        SHELFWISE_DECISION_TRACE="sampled",
        SHELFWISE_DECISION_TRACE_SAMPLE_RATE="0.05",
        SHELFWISE_LOG_LEVEL="warning",
    )
    return env


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants (Linux /proc), in MB."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:"))
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo.extend(int(c) for c in f.read().split())
        except (OSError, StopIteration):
            continue
    return total / 1024


# --- the load ----------------------------------------------------------------


@dataclass
class Tally:
    latency: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    def ok(self, kind: str, seconds: float) -> None:
        self.latency.setdefault(kind, []).append(seconds)

    def error(self, kind: str, what: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if len(self.examples) < 10:
            self.examples.append(f"{kind}: {what}")


class Conn:
    """One keep-alive HTTP/1.1 connection (a few µs per request on the client side).

    Re-opened after ``IDLE`` seconds unused: the server closes idle connections
    after 5 s, as any HTTP client expects."""

    IDLE = 3.0

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = 0.0

    async def request(
        self, method: str, path: str, key: str, body: Any = None, extra: str = ""
    ) -> tuple[int, bytes, dict[str, str]]:
        if self.writer is not None and time.monotonic() - self.used > self.IDLE:
            self.close()
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        data = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n{extra}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + data)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        headers = {}
        for line in raw.split(b"\r\n")[1:]:
            if b":" in line:
                k, v = line.split(b":", 1)
                headers[k.strip().lower().decode()] = v.strip().decode()
        payload = await self.reader.readexactly(int(headers.get("content-length", "0")))
        self.used = time.monotonic()
        return int(raw[9:12]), payload, headers

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


async def paced(rate: float, stop: float, step: Any) -> None:
    """Call ``step(i)`` ``rate`` times a second until ``stop``; late slots are skipped."""
    if rate <= 0:
        return
    gap = 1.0 / rate
    nxt = time.perf_counter()
    for i in itertools.count():
        now = time.perf_counter()
        if now >= stop:
            return
        if nxt > now:
            await asyncio.sleep(nxt - now)
        await step(i)
        nxt = max(nxt + gap, time.perf_counter() - gap)


async def timed(tally: Tally, kind: str, conn: Conn, *args: Any, **kw: Any) -> bytes | None:
    t = time.perf_counter()
    try:
        status, body, _ = await conn.request(*args, **kw)
    except (OSError, asyncio.IncompleteReadError) as e:
        tally.error(kind, type(e).__name__)
        conn.close()
        return None
    if not 200 <= status < 300:
        tally.error(kind, f"{status} {body[:200]!r}")
        return None
    tally.ok(kind, time.perf_counter() - t)
    return body


async def recommendations(
    port: int, ids: list[str], rate: float, stop: float, t: Tally, seed: int
) -> None:
    conn = Conn(port)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(ids), 100_000)

    async def step(i: int) -> None:
        item = ids[int(picks[i % len(picks)])]
        shopper = int(picks[(i * 7) % len(picks)]) % SHOPPERS
        session = f"&session=sess-{shopper}&person=anon-{shopper}" if i % 2 else ""
        path = (
            "/v1/recommendations?placement=home",
            f"/v1/recommendations?placement=product_similar&item={item}",
            f"/v1/recommendations?placement=product_bought_with&item={item}",
            f"/v1/recommendations?placement=cart&cart={item}",
            "/v1/recommendations?placement=email&k=6",
        )[i % 5]
        await timed(t, "recommend", conn, "GET", path + session, KEYS["read"])

    try:
        await paced(rate, stop, step)
    finally:
        conn.close()


async def ingest(port: int, ids: list[str], rate: float, size: int, stop: float, t: Tally) -> None:
    conn = Conn(port)
    rng = random.Random(9)
    run = f"{time.time_ns():x}"

    async def step(i: int) -> None:
        now = datetime.now(UTC).isoformat()
        batch = []
        for j in range(size):
            shopper = rng.randrange(SHOPPERS)
            batch.append(
                {
                    "type": "product_view",
                    "event_id": f"soak-{run}-{i}-{j}",
                    "occurred_at": now,
                    "anonymous_id": f"anon-{shopper}",
                    "session_id": f"sess-{shopper}",
                    "product_id": ids[rng.randrange(len(ids))],
                }
            )
        await timed(t, "ingest", conn, "POST", "/v1/events", KEYS["ingest"], batch)

    try:
        await paced(rate, stop, step)
    finally:
        conn.close()


async def rule_edits(port: int, rate: float, stop: float, t: Tally) -> None:
    conn = Conn(port)
    versions: dict[str, int] = {}

    async def step(i: int) -> None:
        rule_id = f"soak-{i % RULES}"
        body = {
            "id": rule_id,
            "type": "exclude",
            "reason": f"soak edit {i}",
            "when": {"attr": "tags", "op": "contains", "value": f"soak-tag-{i % 7}"},
        }
        if rule_id in versions:
            method, path = "PUT", f"/v1/rules/{rule_id}"
            extra = f'If-Match: "{versions[rule_id]}"\r\n'
        else:
            method, path, extra = "POST", "/v1/rules", ""
        got = await timed(t, "rule_edit", conn, method, path, KEYS["merchandiser"], body, extra)
        if got is not None:
            versions[rule_id] = int(json.loads(got)["version"])

    try:
        await paced(rate, stop, step)
    finally:
        conn.close()


async def reloads(port: int, every: float, stop: float, t: Tally) -> None:
    conn = Conn(port)

    async def step(i: int) -> None:
        if i:  # the first slot is at the start: reload from the second on
            await timed(t, "reload", conn, "POST", "/v1/models/reload", KEYS["admin"], {})

    try:
        await paced(1.0 / every, stop, step)
    finally:
        conn.close()


async def memory(pid: int, every: float, stop: float, samples: list[tuple[float, float]]) -> None:
    start = time.perf_counter()
    while time.perf_counter() < stop:
        samples.append((round(time.perf_counter() - start, 1), round(rss_mb(pid), 1)))
        await asyncio.sleep(every)
    samples.append((round(time.perf_counter() - start, 1), round(rss_mb(pid), 1)))


async def load(args: argparse.Namespace, port: int, pid: int, ids: list[str]) -> dict[str, Any]:
    tally = Tally()
    samples: list[tuple[float, float]] = []
    start = time.perf_counter()
    stop = start + args.seconds
    await asyncio.gather(
        recommendations(port, ids, args.rec_rate / 2, stop, tally, 1),
        recommendations(port, ids, args.rec_rate / 2, stop, tally, 2),
        ingest(port, ids, args.ingest_rate, args.batch, stop, tally),
        rule_edits(port, args.rule_rate, stop, tally),
        reloads(port, min(args.reload_every, args.seconds / 2), stop, tally),
        memory(pid, args.sample_every, stop, samples),
    )
    elapsed = time.perf_counter() - start
    return summarise(tally, samples, elapsed, args)


# --- the report --------------------------------------------------------------


def _pct(values: list[float]) -> dict[str, float]:
    a = np.array(values) * 1e3
    return {
        "n": len(values),
        "p50_ms": round(float(np.percentile(a, 50)), 2),
        "p99_ms": round(float(np.percentile(a, 99)), 2),
    }


def growth(samples: list[tuple[float, float]], warmup: float) -> dict[str, Any]:
    """RSS growth over the first and the second half of the run after the warm-up."""
    steady = [(t, m) for t, m in samples if t >= warmup]
    if len(steady) < 3:
        return {"first_half_mb": None, "second_half_mb": None, "levels_off": None}
    mid = steady[0][0] + (steady[-1][0] - steady[0][0]) / 2
    at_mid = min(steady, key=lambda s: abs(s[0] - mid))[1]
    first = round(at_mid - steady[0][1], 1)
    second = round(steady[-1][1] - at_mid, 1)
    return {
        "start_mb": steady[0][1],
        "mid_mb": at_mid,
        "end_mb": steady[-1][1],
        "peak_mb": max(m for _, m in steady),
        "first_half_mb": first,
        "second_half_mb": second,
        "levels_off": second <= max(8.0, 0.5 * first),
    }


def summarise(
    t: Tally, samples: list[tuple[float, float]], elapsed: float, args: argparse.Namespace
) -> dict[str, Any]:
    everything = [x for v in t.latency.values() for x in v]
    return {
        "seconds": round(elapsed, 1),
        "requests": len(everything) + sum(t.errors.values()),
        "throughput_per_s": round(len(everything) / elapsed, 1),
        "events_ingested": len(t.latency.get("ingest", [])) * args.batch,
        "errors": sum(t.errors.values()),
        "errors_by_kind": t.errors,
        "error_examples": t.examples,
        "latency": {"all": _pct(everything) if everything else None}
        | {k: _pct(v) for k, v in sorted(t.latency.items())},
        "memory": growth(samples, args.warmup),
        "rss_mb": samples,
    }


def ascii_curve(samples: list[tuple[float, float]], rows: int = 12) -> str:
    """RSS over time as text: one line per time slice, a bar per MB above the minimum."""
    if not samples:
        return ""
    step = max(1, len(samples) // rows)
    picked = samples[::step]
    low = min(m for _, m in samples)
    high = max(m for _, m in samples)
    scale = 40 / max(high - low, 1.0)
    return "\n".join(f"{t:7.0f} s {m:7.1f} MB |{'#' * int((m - low) * scale)}" for t, m in picked)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                c.sendall(b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n")
                if b" 200 " in c.recv(200):
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError("server did not become ready")


def soak(args: argparse.Namespace) -> dict[str, Any]:
    ids = prepare(args.workdir, args.products)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "shelfwise.cli", "serve", "--port", str(port)],
        env=server_env(args.workdir),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(port, proc)
        result = asyncio.run(load(args, port, proc.pid, ids))
        result["server_alive"] = proc.poll() is None
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    result["settings"] = {
        k: getattr(args, k)
        for k in ("seconds", "rec_rate", "ingest_rate", "batch", "rule_rate", "reload_every")
    }
    return result


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--products", type=int, default=2_000)
    ap.add_argument("--rec-rate", type=float, default=120.0, help="recommendations per second")
    ap.add_argument("--ingest-rate", type=float, default=5.0, help="event batches per second")
    ap.add_argument("--batch", type=int, default=20, help="events per batch")
    ap.add_argument("--rule-rate", type=float, default=1.0, help="rule edits per second")
    ap.add_argument("--reload-every", type=float, default=120.0, help="seconds between reloads")
    ap.add_argument("--sample-every", type=float, default=5.0, help="seconds between RSS samples")
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds left out of the growth")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/shelfwise-bench-soak"))
    ap.add_argument("--json", type=Path, default=None, help="also write the result here")
    return ap


def main() -> None:
    args = parser().parse_args()
    result = soak(args)
    print(json.dumps({k: v for k, v in result.items() if k != "rss_mb"}, indent=2))
    print(ascii_curve(result["rss_mb"]))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    if result["errors"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
