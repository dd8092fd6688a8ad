"""The dashboard's listening socket: SO_REUSEADDR, and patience when the port is taken.

SO_REUSEADDR lets a restarted dashboard bind while the old connections sit in
TIME_WAIT; a port still *listened on* (the previous process during a restart
overlap) is retried: 12 tries, the backoff doubling from 0.25 s and capped at
2 s (about 20 s in all). Never SO_REUSEPORT, which would let two dashboards
listen on one port at once.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket

from hyperhive.backoff import Backoff
from hyperhive.errors import ServerError

log = logging.getLogger("hyperhive.web")

BIND_TRIES = 12
BIND_FIRST = 0.25
BIND_CAP = 2.0
BACKLOG = 128


def _open(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


async def bind_listener(
    host: str, port: int, tries: int = BIND_TRIES, first: float = BIND_FIRST, cap: float = BIND_CAP
) -> socket.socket:
    """A listening socket on `host:port`, retrying while the port is in use."""
    backoff = Backoff(first=first, cap=cap, jitter=False)
    for attempt in range(1, tries + 1):
        try:
            return _open(host, port)
        except socket.gaierror as exc:
            raise ServerError(f"dashboard address {host!r}: {exc.strerror or exc}") from None
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise ServerError(
                    f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                ) from None
            if attempt == tries:
                raise ServerError(
                    f"port {port} on {host} is still in use after {tries} tries: another "
                    "dashboard (or something else) has it; set dashboard_port or "
                    "--dashboard-port to use another"
                ) from None
            delay = backoff.next_delay()
            log.warning("dashboard: %s:%d is in use; trying again in %.2fs", host, port, delay)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


def url_of(sock: socket.socket) -> str:
    """The dashboard's URL for a listening socket."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        shown = "127.0.0.1" if host == "0.0.0.0" else "[::1]"
    return f"http://{shown}:{port}/"
