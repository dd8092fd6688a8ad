"""The dashboard's socket: SO_REUSEADDR, never SO_REUSEPORT, and patience while the port
is taken."""

from __future__ import annotations

import asyncio
import socket

import pytest

from hyperhive.errors import ServerError
from hyperhive.web.listen import BIND_TRIES, bind_listener, url_of


def _taken() -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


async def test_a_taken_port_is_retried_until_it_is_free() -> None:
    holder = _taken()
    port = holder.getsockname()[1]
    asyncio.get_running_loop().call_later(0.15, holder.close)  # the old process goes away
    sock = await bind_listener("127.0.0.1", port, first=0.05, cap=0.2)
    try:
        assert sock.getsockname()[1] == port
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) == 0
        assert url_of(sock) == f"http://127.0.0.1:{port}/"
    finally:
        sock.close()


async def test_a_port_that_stays_taken_is_a_clear_refusal_after_twelve_tries() -> None:
    holder = _taken()
    port = holder.getsockname()[1]
    try:
        with pytest.raises(
            ServerError, match=f"port {port} .* still in use after {BIND_TRIES} tries"
        ):
            await bind_listener("127.0.0.1", port, first=0.001, cap=0.002)
    finally:
        holder.close()


async def test_an_address_not_of_this_machine_is_refused_at_once() -> None:
    with pytest.raises(ServerError, match=r"cannot listen on 192\.0\.2\.1:0"):
        await bind_listener("192.0.2.1", 0)
