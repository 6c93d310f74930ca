"""Dependencies a test can take down and bring back: a TCP proxy in front of the shared
PostgreSQL (cut = every connection dropped and new ones refused, as in a restart), and a
throwaway ``redis-server`` the test owns. The shared servers are never touched."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field

import httpx2 as httpx

from tests.conftest import service_missing
from tests.e2e.server import READY_SECONDS, reserved_port


class Proxy:
    """Forwards 127.0.0.1:``port`` to ``target`` until :meth:`cut`; :meth:`restore` reopens.
    The port is held from the start to the end of the ``with`` (``reserved_port``): no
    other test's ``bind(0)`` gets it while the proxy is cut."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._held = contextlib.ExitStack()
        self.port = self._held.enter_context(reserved_port())
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._up = threading.Event()
        self._closed = threading.Event()  # the listener is closed: nothing new gets through
        self.restore()

    def restore(self) -> None:
        self._closed.clear()
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        listener.settimeout(0.1)
        self._up.set()
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        with listener:
            self._accepting(listener)
        self._closed.set()

    def _accepting(self, listener: socket.socket) -> None:
        while self._up.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self._sockets |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                _drop(s)
            with self._lock:
                self._sockets -= {a, b}

    def cut(self) -> None:
        """Refuse new connections and drop the open ones; returns once both are done
        (the accept loop has closed the listener, however long a loaded machine takes)."""
        self._up.clear()
        assert self._closed.wait(READY_SECONDS), "the proxy's listener did not close"
        with self._lock:
            open_now = list(self._sockets)
        for s in open_now:
            _drop(s)

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cut()
        self._held.close()


def _drop(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        s.close()


class RedisServer:
    """A ``redis-server`` of the test's own on a port held until the ``with`` ends (so a
    killed server starts again on it): :meth:`kill` and :meth:`start`."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            service_missing("the redis-server binary")
        assert binary is not None
        self.binary = binary
        self._held = contextlib.ExitStack()
        self.port = self._held.enter_context(reserved_port())
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
        self._held.close()


@dataclass
class Outcomes:
    """Every answer of a load stream, stamped with the phase it was sent and answered in
    (the stream's step decides: one in flight across a change belongs to neither)."""

    phase: str = "before"
    seen: list[tuple[str, str, int, str | None]] = field(default_factory=list)
    rec_ids: dict[str, list[str]] = field(default_factory=dict)  # slates served, by phase

    def record(self, phase: str, kind: str, r: httpx.Response) -> bool:
        code = r.json().get("error", {}).get("code") if r.status_code >= 400 else None
        self.seen.append((phase, kind, r.status_code, code))
        if kind == "recommend" and r.status_code == 200:
            self.rec_ids.setdefault(phase, []).append(r.json()["rec_id"])
        return r.status_code == 200

    def of(self, phase: str, kind: str) -> list[tuple[int, str | None]]:
        return [(s, c) for p, k, s, c in self.seen if p == phase and k == kind]

    def statuses(self) -> set[int]:
        return {s for _, _, s, _ in self.seen}
