"""The per-message loop for services: ack, nak or terminate each message by its outcome.

    async def handle(event, msg): ...          # raise Retry to come back later,
    await run_handler_loop(consumer, handle)   # Poison (or anything) to dead-letter

Poison never stops the loop: the message is terminated and recorded as a
`bus.dead_lettered` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg
from nats.js import api as js_api

from hyperhive.bus import events as ev
from hyperhive.bus.consume import PullConsumer, ack_info
from hyperhive.bus.envelope import SOURCE_BUS
from hyperhive.bus.publish import publish_event
from hyperhive.errors import HyperhiveError, MalformedEvent

log = logging.getLogger("hyperhive.bus")


class Retry(HyperhiveError):
    """Raised by a handler: not now, redeliver after `delay` seconds."""

    def __init__(self, message: str, delay: float = 1.0) -> None:
        super().__init__(message)
        self.delay = delay


class Poison(HyperhiveError):
    """Raised by a handler: this message can never be processed; dead-letter it."""


Handler = Callable[[ev.AnyEvent, Msg], Awaitable[None]]


async def run_handler_loop(
    consumer: PullConsumer,
    handler: Handler,
    hive: str,
    stop: asyncio.Event | None = None,
) -> None:
    """Process messages one by one; ack on success, nak on `Retry`, term on poison.

    Poison (undecodable bytes, `Poison`, or any other exception from the handler)
    is terminated and recorded as a `bus.dead_lettered` event; the loop goes on.
    """
    if consumer.ack_policy != js_api.AckPolicy.EXPLICIT:
        raise HyperhiveError(f"consumer {consumer.name}: the handler loop needs AckPolicy.EXPLICIT")
    await consumer.ensure()
    async for msgs in consumer.batches(batch=256):
        for msg in msgs:
            try:
                event = ev.decode_event(msg.data)
                ev.check_matches_subject(event, msg.subject)
                await handler(event, msg)
            except Retry as exc:
                await msg.nak(delay=exc.delay)
                continue
            except (MalformedEvent, Poison, Exception) as exc:
                await msg.term()
                await dead_letter(consumer, msg, exc, hive)
                continue
            await msg.ack()
        if stop is not None and stop.is_set():
            return


async def dead_letter(consumer: PullConsumer, msg: Msg, exc: BaseException, hive: str) -> None:
    log.error(
        "consumer %s dead-lettered seq %s on %s: %s",
        consumer.name,
        ack_info(msg).stream_seq,
        msg.subject,
        exc,
    )
    event = ev.MessageDeadLettered(
        hive=hive,
        source=SOURCE_BUS,
        consumer=consumer.name,
        stream_seq=ack_info(msg).stream_seq,
        subject=msg.subject[:512],
        error=str(exc)[:4096],
        excerpt=msg.data[:1024].decode(errors="replace"),
    )
    with contextlib.suppress(HyperhiveError):
        await publish_event(consumer.js, event)
