"""Live subscriptions: what is published now, over core NATS, filtered exactly.

For subscribers that only care about now (a dashboard's live view); anything
that must not be missed reads the stream (`consume.read_ordered`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from nats.aio.client import Client
from nats.aio.msg import Msg

from hyperhive import events as ev
from hyperhive.bus import subjects
from hyperhive.bus.filters import EventFilter
from hyperhive.bus.records import decode_message
from hyperhive.bus.settle import settle
from hyperhive.errors import MalformedEvent


@asynccontextmanager
async def open_live_events(
    nc: Client,
    event_filter: EventFilter,
    queue_size: int = 10_000,
) -> AsyncIterator[AsyncIterator[tuple[Msg, ev.AnyEvent | MalformedEvent]]]:
    """Subscribe now; iterate events as they are published (core NATS, no replay).

    For subscribers that only care about now (a dashboard's live view). The
    subscriptions are in place (flushed to the server) when the block starts.
    A slow reader loses the oldest buffered events rather than stalling the
    server; anything that must not be missed reads the stream (`read_ordered`).
    Malformed messages are yielded as the `MalformedEvent` describing them.
    """
    queue: asyncio.Queue[Msg] = asyncio.Queue(maxsize=queue_size)

    async def deliver(msg: Msg) -> None:
        if subjects.is_js_ack(msg.reply or "") or (msg.headers and "Nats-Stream" in msg.headers):
            return  # a stored event re-delivered by the server (a push consumer), not a publish
        if queue.full():
            queue.get_nowait()
        queue.put_nowait(msg)

    async def events() -> AsyncIterator[tuple[Msg, ev.AnyEvent | MalformedEvent]]:
        while True:
            msg = await queue.get()
            try:
                event = decode_message(msg.subject, msg.data)
            except MalformedEvent as exc:
                yield msg, exc
                continue
            if event_filter.matches(event.hive, event.agent, event.kind, event.related_agents()):
                yield msg, event

    subs = [await nc.subscribe(s, cb=deliver) for s in event_filter.subjects()]
    try:
        await settle(nc)
        yield events()
    finally:
        for sub in subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
