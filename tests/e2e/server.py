"""Run the real ``shelfwise`` CLI and HTTP server as subprocesses."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx2 as httpx

from shelfwise.config import Settings

SHELFWISE = [sys.executable, "-m", "shelfwise.cli"]
# A guard against a server that never starts, not a speed test: a worker imports
# for ~3 s of CPU, and on a loaded 2-core machine (several servers starting at
# once, as the bare-install test does) that took over 60 s of wall time.
READY_SECONDS = 180


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment that hands ``settings`` to a child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHELFWISE_")}
    env["SHELFWISE_DATABASE_URL"] = settings.database_url
    if settings.database_schema:
        env["SHELFWISE_DATABASE_SCHEMA"] = settings.database_schema
    if settings.redis_url:
        env["SHELFWISE_REDIS_URL"] = settings.redis_url
        env["SHELFWISE_REDIS_PREFIX"] = settings.redis_prefix
    env["SHELFWISE_MODEL_DIR"] = str(settings.model_dir)
    env["SHELFWISE_MODEL_WATCH_SECONDS"] = str(settings.model_watch_seconds)
    env["SHELFWISE_TRAIN_JOBS"] = str(settings.train_jobs)  # 1 in tests (tests/conftest.py)
    env["SHELFWISE_API_KEYS"] = json.dumps(
        [{"name": k.name, "sha256": k.digest(), "roles": list(k.roles)} for k in settings.api_keys]
    )
    # The server's alert schedule runs only where a test asks for it.
    env["SHELFWISE_ALERT_EVALUATE_EVERY_SECONDS"] = str(settings.alert_evaluate_every_seconds or 0)
    env.update(extra)
    return env


def run_cli(
    args: list[str],
    env: Mapping[str, str],
    cwd: Path | None = None,
    timeout: float = 120,
    command: Sequence[str] = SHELFWISE,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, *args],
        input=stdin,
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# Runs several CLI invocations in one process, one after the other, each through the
# real entry point (``shelfwise.cli.main:main``, what ``python -m shelfwise.cli`` runs)
# with its own argv, its own stdout and stderr (file descriptors 1 and 2, redirected)
# and its exit status as the process would have it: one interpreter start and one
# import of shelfwise (~1.5 s of CPU) for them all, instead of one each.
_SESSION = r"""
import json, os, sys, tempfile, traceback
from shelfwise.cli.main import main

calls = json.loads(sys.stdin.read())
saved = os.dup(1), os.dup(2)
results = []
for args in calls:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush(); sys.stderr.flush()
        os.dup2(out.fileno(), 1); os.dup2(err.fileno(), 2)
        sys.argv = ["shelfwise", *args]
        code = 0
        try:
            main()
        except SystemExit as e:
            if e.code is None or isinstance(e.code, int):
                code = e.code or 0
            else:
                print(e.code, file=sys.stderr)
                code = 1
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush(); sys.stderr.flush()
        os.dup2(saved[0], 1); os.dup2(saved[1], 2)
        out.seek(0); err.seek(0)
        results.append([code, out.read().decode(), err.read().decode()])
with os.fdopen(saved[0], "w") as real_stdout:  # all of it, however long
    real_stdout.write(json.dumps(results))
"""


def run_cli_session(
    calls: list[list[str]], env: Mapping[str, str], cwd: Path | None = None, timeout: float = 240
) -> list[subprocess.CompletedProcess[str]]:
    """Each of ``calls`` (a CLI argv) run in turn by one process through the CLI's entry
    point: what ``run_cli`` would give for each, for one interpreter start in all."""
    session = [sys.executable, "-c", _SESSION]
    done = run_cli([], env, cwd, timeout, command=session, stdin=json.dumps(calls))
    assert done.returncode == 0, done.stdout + done.stderr
    return [
        subprocess.CompletedProcess([*SHELFWISE, *args], code, out, err)
        for args, (code, out, err) in zip(calls, json.loads(done.stdout), strict=True)
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def reserved_port() -> Iterator[int]:
    """A port for a server this test starts, held until the ``with`` ends.

    A port that ``free_port`` found free is free again for anyone once it returns:
    in the seconds a server takes to start and bind it, another test's ``bind(0)``
    may be handed the same one (one of ~14,000: the kernel hands bind(0) the odd
    ports of the ephemeral range). Held here by a socket bound, not listening, with
    SO_REUSEADDR and SO_REUSEPORT, the port is skipped by every ``bind(0)`` and
    ``connect()`` of the machine, while the server's own bind and listen (uvicorn's
    SO_REUSEADDR, serve's per-worker SO_REUSEPORT sockets, demo's listen) succeed.
    Only a port handed out before this one was held, by ``free_port`` (which holds
    nothing), can still go to two servers: servers started with ``reserved_port`` never
    share one."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def children(pid: int) -> list[int]:
    """The child processes of ``pid`` (Linux /proc)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def server_pid(base: str) -> int:
    """The supervisor of the ``shelfwise serve`` listening at ``base`` (Linux /proc).

    Every other process's entry is read too, and any of them may exit between the
    listing of /proc and that read (a test beside this one ends a CLI call): such a
    vanished entry is passed over, never an error."""
    wanted = f"serve\0--port\0{urlparse(base).port}\0".encode()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if wanted in cmdline.read_bytes():
                return int(cmdline.parent.name)
        except OSError:  # gone since /proc was listed
            continue
    raise AssertionError(f"no server process for {base}")


def sockets_per_process(pids: list[int], port: int, state: str) -> dict[int, int]:
    """How many TCP sockets on local ``port`` in ``state`` (``01`` established, ``0A``
    listening) each process holds (Linux /proc)."""
    inodes: set[str] = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if int(f[1].split(":")[1], 16) == port and f[3] == state:
            inodes.add(f[9])
    counts = {}
    for pid in pids:
        held = 0
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                held += 1
        counts[pid] = held
    return counts


def _listening_workers(pid: int, port: int) -> int:
    try:
        return sum(1 for n in sockets_per_process(children(pid), port, "0A").values() if n)
    except OSError:  # a process went away while we looked
        return 0


@contextmanager
def running_server(
    env: Mapping[str, str],
    workers: int = 1,
    cwd: Path | None = None,
    args: list[str] | None = None,
    log: Path | None = None,
    command: Sequence[str] = SHELFWISE,
) -> Iterator[str]:
    """Start ``shelfwise serve`` (``command``: how to run shelfwise) and yield its base URL
    once /ready answers (with several workers: once every worker listens). ``log``: a file
    for the server's output."""
    # The port is held from before the server starts until it is stopped (reserved_port).
    with reserved_port() as port:
        cmd = [*command, "serve", "--port", str(port), "--workers", str(workers), *(args or [])]
        sink = None if log is None else log.open("a")
        stdout = subprocess.PIPE if sink is None else sink
        proc = subprocess.Popen(
            cmd, env=dict(env), cwd=cwd, stdout=stdout, stderr=subprocess.STDOUT, text=True
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + READY_SECONDS
            while True:
                if proc.poll() is not None:
                    out = proc.stdout.read() if proc.stdout else log.read_text() if log else ""
                    raise RuntimeError(f"server exited with {proc.returncode}:\n{out}")
                try:
                    # /ready answers once one worker is up; with several, each listens on
                    # its own socket: wait for all of them, so tests reach every worker.
                    ready = httpx.get(f"{base}/ready", timeout=1).status_code == 200
                    if ready and (workers == 1 or _listening_workers(proc.pid, port) >= workers):
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server did not become ready in {READY_SECONDS} s")
                time.sleep(0.2)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout:
                proc.stdout.close()
            if sink is not None:
                sink.close()


def train_here(
    settings: Settings, force: bool = False, with_ranker: bool = False, **changes: Any
) -> dict[str, Any]:
    """Train (and promote when the guard allows) in this process, as ``shelfwise train``
    does, on ``settings`` with ``changes``: what ``train --json`` prints, for a test whose
    claim is about serving the bundle, not about the CLI (no interpreter start, ~1.5 s
    of CPU less)."""
    from shelfwise.runtime import Runtime
    from shelfwise.training.job import train

    runtime = Runtime.open(settings.model_copy(update=changes))
    try:
        return train(runtime, force=force, with_ranker=with_ranker).as_dict()
    finally:
        runtime.close()


def json_of(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


@contextmanager
def lamp_shop_client(settings: Settings) -> Iterator[Any]:
    """An in-process client (``fastapi.testclient.TestClient``) on a store of 12 lamps
    of two brands, all in stock, with no model bundle (degraded mode)."""
    from fastapi.testclient import TestClient

    from shelfwise.api import create_app
    from shelfwise.catalog import Product
    from shelfwise.runtime import Runtime

    rt = Runtime.open(settings)
    rows = [
        {
            "product_id": f"P{i}",
            "title": f"Lamp {i}",
            "category_path": "lighting/lamps",
            "brand": "Gleam" if i % 2 else "Lumen",
            "price": 10.0 + i,
            "stock_qty": 3,
            "image_url": f"/img/{i}.jpg",
        }
        for i in range(1, 13)
    ]
    rt.catalog.upsert([Product.model_validate(r) for r in rows])
    rt.snapshot.load()
    try:
        with TestClient(create_app(settings, rt), raise_server_exceptions=False) as c:
            yield c
    finally:
        rt.close()
