"""The demo binds its own socket before it sends anything, and talks only to that address."""

from __future__ import annotations

import socket

import pytest

from shelfwise.cli.demo import CannotListen, listen, local_url


def test_port_zero_listens_on_a_free_port_and_the_url_names_it() -> None:
    with listen("127.0.0.1", 0) as sock:
        port = sock.getsockname()[1]
        assert port > 0
        assert local_url(sock) == f"http://127.0.0.1:{port}"
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # it already listens: connections queue until the server accepts


@pytest.mark.parametrize("host", ["0.0.0.0", "localhost"])
def test_a_wildcard_address_or_a_name_is_reached_on_ipv4_loopback(host: str) -> None:
    with listen(host, 0) as sock:  # an address without ":" is IPv4, as for uvicorn
        assert local_url(sock) == f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_ipv6_urls_are_bracketed() -> None:
    with listen("::1", 0) as sock:
        assert local_url(sock) == f"http://[::1]:{sock.getsockname()[1]}"


def test_a_port_held_by_another_listener_is_port_in_use() -> None:
    with socket.create_server(("127.0.0.1", 0)) as holder:
        port = holder.getsockname()[1]
        with pytest.raises(CannotListen) as caught:
            listen("127.0.0.1", port)
    assert caught.value.code == "port_in_use"
    assert f"port {port} on 127.0.0.1 is already in use" in caught.value.message
