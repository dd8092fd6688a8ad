"""The per-message loop for services: ack, nak or terminate each message by its outcome.

    async def handle(event, msg): ...          # raise Retry to come back later,
    await run_handler_loop(consumer, handle)   # Poison (or anything) to dead-letter

Poison never stops the loop: the message is terminated and recorded as a
`bus.dead_lettered` event. An unexpected exception (a bug in a handler) is
logged with its traceback first, so a dead letter always has a stack to go
with it. While a handler runs past half the consumer's `ack_wait`, the loop
tells JetStream it is still working (`in_progress`), so a slow handler (a
container being created) is never redelivered mid-work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import nats.errors
from nats.aio.msg import Msg
from nats.js import api as js_api

from hyperhive import events as ev
from hyperhive.bus.consume import PullConsumer, ack_info
from hyperhive.bus.publish import publish_event
from hyperhive.bus.records import decode_message
from hyperhive.errors import HyperhiveError, MalformedEvent, Poison, Retry

log = logging.getLogger("hyperhive.bus")

Handler = Callable[[ev.AnyEvent, Msg], Awaitable[None]]


async def run_handler_loop(
    consumer: PullConsumer,
    handler: Handler,
    hive: str,
    stop: asyncio.Event | None = None,
) -> None:
    """Process messages one by one; ack on success, nak on `Retry`, term on poison."""
    if consumer.ack_policy != js_api.AckPolicy.EXPLICIT:
        raise HyperhiveError(f"consumer {consumer.name}: the handler loop needs AckPolicy.EXPLICIT")
    await consumer.ensure()
    async for msgs in consumer.batches(batch=256):
        for msg in msgs:
            try:
                event = decode_message(msg.subject, msg.data)
                await _with_progress(handler(event, msg), msg, consumer.ack_wait)
            except Retry as exc:
                await msg.nak(delay=exc.delay)
                continue
            except (MalformedEvent, Poison) as exc:
                await msg.term()
                await dead_letter(consumer, msg, exc, hive)
                continue
            except Exception as exc:
                log.exception(
                    "consumer %s: handler failed on seq %s (%s)",
                    consumer.name,
                    ack_info(msg).stream_seq,
                    msg.subject,
                )
                await msg.term()
                await dead_letter(consumer, msg, exc, hive)
                continue
            await msg.ack()
        if stop is not None and stop.is_set():
            return


async def _with_progress(work: Awaitable[None], msg: Msg, ack_wait: float) -> None:
    """Await `work`; every ack_wait/2 it is still running, send `in_progress()`."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait([task], timeout=ack_wait / 2)
            if done:
                return task.result()
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await msg.in_progress()
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def dead_letter(consumer: PullConsumer, msg: Msg, exc: BaseException, hive: str) -> None:
    seq = ack_info(msg).stream_seq
    log.error("consumer %s dead-lettered seq %s on %s: %s", consumer.name, seq, msg.subject, exc)
    event = ev.MessageDeadLettered(
        hive=hive,
        source=ev.SOURCE_BUS,
        consumer=consumer.name,
        stream_seq=seq,
        subject=msg.subject[:512],
        error=str(exc)[:4096] or type(exc).__name__,
        excerpt=msg.data[:1024].decode(errors="replace"),
    )
    with contextlib.suppress(HyperhiveError, nats.errors.Error, TimeoutError):
        await publish_event(consumer.js, event)
