"""``serve --workers N`` spreads connections over its workers (api/server.py).

With one listening socket shared by every worker, the first worker to wake
accepted every waiting connection: 16 keep-alive connections opened together all
landed on one worker. Each worker now listens on its own ``SO_REUSEPORT`` socket.
"""

from __future__ import annotations

import pickle
import socket

from shelfwise.api.server import WorkerListener
from shelfwise.config import Settings
from tests.e2e.server import (
    children,
    running_server,
    server_pid,
    settings_env,
    sockets_per_process,
)


def test_each_worker_unpickles_its_own_listening_socket_on_the_port() -> None:
    with socket.socket() as reserved:
        reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        reserved.bind(("127.0.0.1", 0))
        port = reserved.getsockname()[1]
        listener = WorkerListener("127.0.0.1", port)
        a, b = pickle.loads(pickle.dumps(listener)), pickle.loads(pickle.dumps(listener))
        try:
            a.listen()
            b.listen()  # both listen on one port: the kernel spreads connections over them
            assert a.getsockname() == b.getsockname() == ("127.0.0.1", port)
            assert a.fileno() != b.fileno()
            assert a.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 1
        finally:
            a.close()
            b.close()


def test_connections_opened_together_reach_both_workers(sqlite_settings: Settings) -> None:
    env = settings_env(sqlite_settings, SHELFWISE_LOG_LEVEL="warning")
    with running_server(env, workers=2) as base:
        port = int(base.rsplit(":", 1)[1])
        workers = children(server_pid(base))  # running_server waited until both listen
        # Three bursts of 16 connections opened together while both workers are idle.
        for _ in range(3):
            conns = [socket.create_connection(("127.0.0.1", port)) for _ in range(16)]
            try:
                for c in conns:
                    c.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                for c in conns:
                    assert b" 200 " in c.recv(4096)
                held = sockets_per_process(workers, port, "01")
                assert sum(held.values()) == 16, held
                busy = [n for n in held.values() if n > 0]
                assert len(busy) == 2, f"one worker took every connection: {held}"
            finally:
                for c in conns:
                    c.close()
