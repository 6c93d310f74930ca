"""A real ``shelfwise serve`` process that tests may SIGKILL, restart and load."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx2 as httpx

from shelfwise.config import Settings
from tests.e2e.server import (
    READY_SECONDS,
    SHELFWISE,
    reserved_port,
    settings_env,
    sockets_per_process,
)


def _listening(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds a socket listening on ``port`` (Linux /proc)."""
    try:
        return sockets_per_process([pid], port, "0A")[pid] > 0
    except OSError:  # it went away while we looked
        return False


def wait_ready(base: str, proc: subprocess.Popen[bytes], seconds: float = READY_SECONDS) -> None:
    """Until ``proc`` answers ``/ready`` at ``base``; an answer counts once ``proc``
    itself listens on the port (another test's server may have taken it first)."""
    port = int(base.rsplit(":", 1)[1])
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, "server exited early"
        try:
            ready = httpx.get(f"{base}/ready", timeout=1).status_code == 200
        except httpx.TransportError:
            ready = False
        if ready and _listening(proc.pid, port):
            return
        time.sleep(0.2)
    raise AssertionError("server not ready")


@contextmanager
def server(settings: Settings, **env: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """A ready server (its process and base URL); killed on exit if still running. Its
    port is held from before it starts until it stops (``reserved_port``): no other
    test's server is handed it meanwhile."""
    with reserved_port() as port:
        proc = subprocess.Popen(
            [*SHELFWISE, "serve", "--port", str(port)],
            env=settings_env(settings, **env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_ready(base, proc)
            yield proc, base
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@dataclass
class Stream:
    """Calls ``step(client, k)`` for k = 0, 1, ... in a thread until stopped or the
    server is gone; ``step`` returns True for an acknowledged write."""

    step: Callable[[httpx.Client, int], bool]
    acked: int = 0
    sent: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            k = 0
            while not self._stop.is_set():
                self.sent += 1
                try:
                    ok = self.step(client, k)
                except httpx.TransportError:
                    return
                self.acked += ok
                k += 1

    def __enter__(self) -> Stream:
        self._thread = threading.Thread(target=self._run)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def wait_for(self, acked: int, seconds: float = 120) -> None:
        """Until ``acked`` writes are acknowledged (``seconds``: a ceiling for a hung run)."""
        deadline = time.monotonic() + seconds
        while self.acked < acked:
            assert self._thread is not None and self._thread.is_alive(), "the stream ended"
            assert time.monotonic() < deadline, f"{acked} writes not acknowledged in {seconds} s"
            time.sleep(0.005)


def sigkill_when(proc: subprocess.Popen[bytes], stream: Stream, acked: int) -> None:
    """SIGKILL the server once ``stream`` has ``acked`` writes acknowledged (mid-stream)."""
    stream.wait_for(acked)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
