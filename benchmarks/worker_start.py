"""A serving worker's start time and memory on the learned store of a given size.

    .venv/bin/python benchmarks/worker_start.py [--products 2000 --people 2000 --days 84]
        [--rounds 3] [--workers 1]

On the store of ``benchmarks/learned_store.py`` (made first if it is not in
``--workdir``): ``shelfwise serve`` is started ``--rounds`` times against the
store's database and bundle, each time in a new process. Per round: the wall
seconds from the start until ``/ready`` answers 200 with the bundle loaded (not
degraded), and the CPU seconds the server's processes used until then; the
resident memory (``VmRSS`` from ``/proc``) of every worker at that moment; then
the wall seconds of the first home, product page and cart request (each asked
with ``explain=true``: the run fails unless the learned ranker answered) and the
resident memory after them (a worker that has served each placement once), its
file-backed part (``RssFile``: the memory-mapped bundle and the libraries, one
copy in the page cache for every worker of a machine) and the high-water mark
(``VmHWM``). The load average is recorded with each round:
the figures are only comparable at a like load. Medians over rounds at the end.
With ``--workers`` above 1, ``/ready`` answers once one worker is up (the others
may still be loading: their RSS at that moment is lower) and the first requests
go to whichever worker the kernel picks.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from learned_profile import known_buyers, open_store  # noqa: E402
from learned_store import store_arguments, store_of  # noqa: E402
from serve import KEY, tree_cpu  # noqa: E402
from shelfwise.config import ApiKey  # noqa: E402


def descendants(pid: int) -> list[int]:
    """``pid``'s live child processes, all generations (Linux ``/proc``)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                kids = [int(c) for c in (task / "children").read_text().split()]
                out += kids
                todo += kids
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


def memory_mb(pid: int) -> dict[str, float]:
    """``VmRSS``, its file-backed part ``RssFile`` (the memory-mapped bundle arrays and
    the libraries: shared with the other workers through the page cache) and ``VmHWM``
    of ``pid`` in MB (``/proc/<pid>/status``)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssFile", "VmHWM"):
            fields[name] = round(int(value.split()[0]) / 1024, 1)
    return {"rss_mb": fields["VmRSS"], "file_mb": fields["RssFile"], "hwm_mb": fields["VmHWM"]}


def workers_of(proc: subprocess.Popen[bytes], workers: int) -> list[int]:
    """The processes that serve: the server itself with one worker (uvicorn runs in
    it), else its children (uvicorn's supervisor spawns them), not multiprocessing's
    resource tracker."""
    if workers == 1:
        return [proc.pid]
    return [
        p
        for p in descendants(proc.pid)
        if b"resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes()
    ]


def ready(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as r:
            body: dict[str, Any] = json.loads(r.read())
            return body
    except OSError:
        return None


def ask(port: int, query: dict[str, str]) -> float:
    """Wall seconds of one ``explain=true`` request; fails unless the learned ranker
    answered."""
    url = f"http://127.0.0.1:{port}/v1/recommendations?" + urllib.parse.urlencode(
        {**query, "explain": "true"}
    )
    started = time.perf_counter()
    req = urllib.request.Request(url, headers={"X-API-Key": KEY})
    with urllib.request.urlopen(req, timeout=300) as r:
        body = json.loads(r.read())
    took = time.perf_counter() - started
    kind = body["trace"]["ranker"]["kind"]
    if kind != "learned":
        raise SystemExit(f"{query['placement']}: the {kind!r} ranker answered, not the learned one")
    return took


def one_start(folder: Path, workers: int, queries: list[dict[str, str]]) -> dict[str, Any]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHELFWISE_")}
    key = {"name": "bench", "sha256": ApiKey(name="b", secret=KEY, roles=("read",)).digest(),
           "roles": ["read"]}  # fmt: skip
    env.update(
        SHELFWISE_DATABASE_URL=f"sqlite:///{folder / 'store.db'}",
        SHELFWISE_MODEL_DIR=str(folder / "models"),
        SHELFWISE_API_KEYS=json.dumps([key]),
        SHELFWISE_DECISION_TRACE="sampled",
        SHELFWISE_DECISION_TRACE_SAMPLE_RATE="0.01",
        SHELFWISE_LOG_LEVEL="warning",
    )
    cmd = [sys.executable, "-m", "shelfwise.cli", "serve", "--port", str(port),
           "--workers", str(workers)]  # fmt: skip
    load_before = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while (body := ready(port)) is None:
            if proc.poll() is not None or time.perf_counter() - started > 900:
                raise SystemExit("the server did not start")
            time.sleep(0.1)
        start_s = time.perf_counter() - started
        start_cpu_s = tree_cpu(proc.pid)
        if body["degraded"]:
            raise SystemExit(f"the worker serves degraded slates: {body['degraded_reason']}")
        pids = workers_of(proc, workers)
        at_ready = [memory_mb(p) for p in pids]
        first = {q["placement"]: round(ask(port, q), 3) for q in queries}
        after = [memory_mb(p) for p in pids]
        return {
            "load_average_before": load_before,
            "ready_s": round(start_s, 2),
            "ready_cpu_s": round(start_cpu_s, 2),
            "rss_at_ready_mb": [m["rss_mb"] for m in at_ready],
            "rss_file_at_ready_mb": [m["file_mb"] for m in at_ready],
            "first_request_s": first,
            "rss_after_first_requests_mb": [m["rss_mb"] for m in after],
            "rss_file_after_first_requests_mb": [m["file_mb"] for m in after],
            "hwm_mb": [m["hwm_mb"] for m in after],
            "cpu_s_at_end": round(tree_cpu(proc.pid), 2),
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        }
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def requests_for(folder: Path) -> list[dict[str, str]]:
    """A personal home (a known buyer), a product page and a cart."""
    rt = open_store(folder)
    try:
        person = known_buyers(rt)[0]
        ids = rt.snapshot.ids
        item, carted = ids[len(ids) // 3], ids[len(ids) // 2]
    finally:
        rt.close()
    return [
        {"placement": "home", "person": person},
        {"placement": "product_similar", "item": item},
        {"placement": "cart", "person": person, "cart": carted},
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    store_arguments(ap)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    folder = store_of(args)
    queries = requests_for(folder)
    rounds = []
    for r in range(args.rounds):
        rounds.append(one_start(folder, args.workers, queries))
        print(f"round {r + 1}: {json.dumps(rounds[-1])}", file=sys.stderr, flush=True)

    def median(key: str) -> float:
        return round(statistics.median(max(x[key]) for x in rounds), 2)

    out = {
        "store": json.loads((folder / "ready.json").read_text()),
        "workers": args.workers,
        "median_ready_s": round(statistics.median(x["ready_s"] for x in rounds), 2),
        "median_ready_cpu_s": round(statistics.median(x["ready_cpu_s"] for x in rounds), 2),
        "median_worker_rss_at_ready_mb (largest worker)": median("rss_at_ready_mb"),
        "median_worker_rss_after_first_requests_mb (largest worker)": median(
            "rss_after_first_requests_mb"
        ),
        "median_worker_rss_file_after_first_requests_mb (largest worker)": median(
            "rss_file_after_first_requests_mb"
        ),
        "median_first_request_s": {
            q: round(statistics.median(x["first_request_s"][q] for x in rounds), 3)
            for q in rounds[0]["first_request_s"]
        },
        "rounds": rounds,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
