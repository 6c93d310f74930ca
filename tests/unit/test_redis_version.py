"""The rulebook version broadcast backs off a Redis that hangs: one request per interval waits."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from shelfwise.rules.live import RedisVersion


class Silent:
    """Accepts connections and never answers (a hung Redis); counts the connections."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        for c in self.accepted:
            c.close()
        self.sock.close()


@pytest.fixture
def silent() -> Iterator[Silent]:
    s = Silent()
    yield s
    s.close()


@pytest.mark.parametrize(("retry", "connections"), [(60.0, 1), (0.0, 3)])
def test_a_hung_redis_is_left_alone_for_the_retry_interval(
    silent: Silent, retry: float, connections: int
) -> None:
    version = RedisVersion(f"redis://127.0.0.1:{silent.port}/0", "t", retry_seconds=retry)
    assert [version.read() for _ in range(3)] == [None, None, None]
    version.publish(7)  # dropped, not raised
    assert len(silent.accepted) == connections + (retry == 0.0)
    version.close()
