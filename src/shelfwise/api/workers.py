"""What uvicorn's supervisor pickles into each worker process of ``serve --workers N``.

The app factory with the resolved settings, and the worker's own listening
socket. A worker unpickles these *before* it starts answering the supervisor's
health checks (5 s); importing the app takes longer than that on a loaded
machine, and an unanswered check gets the worker killed and restarted, again
and again. So this module imports nothing heavy: the app is imported when the
factory is called, after the health checks are answered.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI


class WorkerApp:
    """The app factory of every worker, carrying the resolved settings as JSON.

    Handed to each worker (and to a restarted one) through the pipe the
    supervisor spawns it with: no file on disk holds the settings, whose API
    keys are digests, never secrets (``serve`` makes sure of it).
    """

    def __init__(self, settings_json: str) -> None:
        self.settings_json = settings_json

    def __call__(self) -> FastAPI:
        from shelfwise.api.app import create_app
        from shelfwise.config import Settings

        return create_app(Settings.model_validate_json(self.settings_json))


def reuse_port_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


class WorkerListener:
    """Each worker's own listening socket on the shared port (``SO_REUSEPORT``).

    With one socket shared by every worker (uvicorn's default), the first worker
    to wake accepts every waiting connection: 16 keep-alive connections opened
    together all landed on one worker, and the other core sat idle. With a
    socket per worker the kernel spreads new connections across the workers.
    Handed to uvicorn's supervisor in place of the shared socket: it is pickled
    into each worker process, which unpickles it as a fresh socket of its own.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port

    def __reduce__(self) -> tuple[Any, tuple[str, int]]:
        return (reuse_port_socket, (self.host, self.port))
