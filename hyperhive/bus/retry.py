"""JetStream requests retried through a leader election.

When a cluster node dies, the streams and consumers it led elect a new leader
(nats-server's raft: 4-9 s after the old one stopped answering); meanwhile
JetStream API requests time out or come back `503`, and a publish to the
stream gets no ack. None of that is a reason for a service to fail:

    info = await through_election(lambda: js.stream_info(name), "stream info")

retries a request that failed in one of those ways, with a short backoff,
until it is answered or `budget` seconds have passed (then the last error is
raised). Anything else (a refusal, "not found") is raised at once.
Publishing an event again is safe: the same `Nats-Msg-Id` is stored once
within the stream's duplicate window (`bus.publish`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import nats.errors
from nats.js import errors as js_errors

from hyperhive.backoff import Backoff

log = logging.getLogger("hyperhive.bus")

T = TypeVar("T")

ELECTION_BUDGET = 30.0  # more than an election takes, a meta leader's included
ATTEMPT_TIMEOUT = 2.0  # one JetStream request while retrying; normally answered in ~1 ms


def transient(exc: BaseException) -> bool:
    """True for the failures a leader election (or a reconnect) causes."""
    if isinstance(exc, js_errors.APIError):
        return exc.code is not None and exc.code >= 500
    return isinstance(
        exc,
        (
            TimeoutError,  # nats.errors.TimeoutError is one too
            nats.errors.NoRespondersError,
            nats.errors.ConnectionReconnectingError,
            nats.errors.OutboundBufferLimitError,
            js_errors.NoStreamResponseError,
        ),
    )


async def through_election(
    call: Callable[[], Awaitable[T]], what: str, budget: float = ELECTION_BUDGET
) -> T:
    """`await call()`, again while it fails transiently, for at most `budget` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget
    backoff = Backoff(first=0.05, cap=1.0)
    while True:
        try:
            return await call()
        except Exception as exc:
            if not transient(exc) or loop.time() >= deadline:
                raise
            delay = min(backoff.next_delay(), max(0.0, deadline - loop.time()))
            log.info("%s: %s; retrying in %.2fs", what, _short(exc), delay)
            await asyncio.sleep(delay)


def _short(exc: BaseException) -> str:
    return " ".join((str(exc) or type(exc).__name__).split())
