"""Knowing the server has what a connection sent: a subscription is live.

nats-py (2.16) writes a flush's PING straight to the socket, but a SUB (and any
publish) waits in the client's pending buffer for its flusher task. A `flush()`
right after `subscribe()` therefore puts PING on the wire *before* the SUB, and
its PONG can come back before the server has the subscription: a request from
another connection in that moment gets "no responders", and a live view can
miss the event a caller publishes right after it was told the view is ready.

`settle` flushes twice. The flusher's wakeup is queued by the first flush ahead
of any read, so whatever was pending is on the wire before that PONG is read;
the second PING follows it, and its PONG means the server has processed it all.
"""

from __future__ import annotations

from nats.aio.client import Client

SETTLE_TIMEOUT = 10  # seconds, each round trip (nats-py takes whole seconds)


async def settle(nc: Client, timeout: int = SETTLE_TIMEOUT) -> None:
    """Return once the server has processed everything `nc` sent before the call."""
    await nc.flush(timeout=timeout)
    await nc.flush(timeout=timeout)
