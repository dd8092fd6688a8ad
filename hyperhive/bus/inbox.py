"""An agent's inbox: a durable consumer c0re creates, and `recv`, the agent's wait on it.

    await ensure_inbox(js, hive, "alice")          # c0re, at spawn (agents may not)
    got = await recv(nc, hive, "alice", wait=180)  # the agent, with its own credentials

`recv` pulls one message from `inbox-<agent>`: it returns within milliseconds of
a message arriving, waits at most `wait` seconds (clamped to 0..180; 0 = what is
there now, at once), and acks a message only once it has been handed over, so
a message sent while the agent is down waits, and is delivered exactly once to
the `recv` that returns it. Waiting is visible: `recv.waiting`, then
`recv.delivered` or `recv.timed_out`, on the agent's own subjects.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import api as js_api
from nats.js import errors as js_errors

from hyperhive import events as ev
from hyperhive.bus import subjects
from hyperhive.bus.publish import publish_event
from hyperhive.bus.records import decode_message
from hyperhive.errors import HyperhiveError, MalformedEvent, NotConnected

log = logging.getLogger("hyperhive.bus")

ACK_WAIT = 30.0  # a message handed out but never acked (a recv cancelled as it arrived) comes back
STATUS = "Status"


def inbox_config(hive: str, agent: str) -> js_api.ConsumerConfig:
    return js_api.ConsumerConfig(
        name=subjects.inbox_durable(agent),
        durable_name=subjects.inbox_durable(agent),
        filter_subject=subjects.inbox_subject(hive, agent),
        deliver_policy=js_api.DeliverPolicy.ALL,
        ack_policy=js_api.AckPolicy.EXPLICIT,
        ack_wait=ACK_WAIT,
        max_ack_pending=1,  # one message at a time, in order
        max_waiting=4,
    )


async def ensure_inbox(nc: Client, hive: str, agent: str) -> None:
    """Create the agent's inbox consumer if it does not exist (idempotent)."""
    js = nc.jetstream()
    stream = subjects.stream_name(hive)
    try:
        await js.consumer_info(stream, subjects.inbox_durable(agent))
        return
    except js_errors.NotFoundError:
        pass
    await js.add_consumer(stream, inbox_config(hive, agent))


async def delete_inbox(nc: Client, hive: str, agent: str) -> None:
    """Remove the agent's inbox consumer (purge); a missing one is fine."""
    with contextlib.suppress(js_errors.NotFoundError):
        await nc.jetstream().delete_consumer(
            subjects.stream_name(hive), subjects.inbox_durable(agent)
        )


async def inbox_depth(nc: Client, hive: str, agent: str) -> int:
    """Messages waiting in the agent's inbox (0 if it has none)."""
    try:
        info = await nc.jetstream().consumer_info(
            subjects.stream_name(hive), subjects.inbox_durable(agent)
        )
    except js_errors.NotFoundError:
        return 0
    return int(info.num_pending or 0) + int(info.num_ack_pending or 0)


@dataclass(frozen=True)
class Received:
    """What `recv` handed over: the message, or a bad one kept with why."""

    message: ev.MessageSent | None
    error: str | None = None
    raw: bytes = b""


async def _pull_one(nc: Client, hive: str, agent: str, wait: float) -> Msg | None:
    """One pull request for one message; None when the wait ran out."""
    stream = subjects.stream_name(hive)
    durable = subjects.inbox_durable(agent)
    inbox = nc.new_inbox()
    got: asyncio.Future[Msg | None] = asyncio.get_running_loop().create_future()

    async def on_msg(msg: Msg) -> None:
        if got.done():
            if msg.reply and subjects.is_js_ack(msg.reply):
                await msg.nak()  # arrived after we stopped waiting: give it back now
            return
        status = msg.headers.get(STATUS) if msg.headers else None
        if status is not None:
            if status != "100":
                got.set_result(None)
            return
        got.set_result(msg)

    sub = await nc.subscribe(inbox, cb=on_msg)
    try:
        body: dict[str, object] = {"batch": 1}
        if wait <= 0:
            body["no_wait"] = True
        else:
            body["expires"] = int(wait * 1e9)
        await nc.publish(
            subjects.js_msg_next(stream, durable), json.dumps(body).encode(), reply=inbox
        )
        async with asyncio.timeout(wait + 5.0):
            return await got
    except TimeoutError:
        return None  # the server never answered (restarted): nothing was handed out
    finally:
        if not got.done():
            got.set_result(None)
        with contextlib.suppress(nats.errors.Error):
            await sub.unsubscribe()


async def recv(
    nc: Client,
    hive: str,
    agent: str,
    wait: float = 30.0,
    announce: bool = True,
) -> Received | None:
    """Wait up to `wait` seconds (clamped 0..180) for the agent's next message.

    Returns None if nothing came. A message that is not a valid `message.sent`
    is handed over as `Received(error=...)` (and acked: it would never become
    valid). With `announce`, publishes recv.waiting / recv.delivered / recv.timed_out.
    """
    seconds = ev.clamp_wait(wait)
    loop = asyncio.get_running_loop()
    start = loop.time()
    if announce and seconds > 0:
        await _announce(
            nc,
            ev.RecvWaiting(hive=hive, agent=agent, source=ev.SOURCE_HARNESS, wait_seconds=seconds),
        )
    try:
        msg = await _pull_one(nc, hive, agent, seconds)
    except nats.errors.Error as exc:
        raise NotConnected(f"recv on {agent}'s inbox failed: {exc}") from None
    if msg is None:
        if announce and seconds > 0:
            waited = round(loop.time() - start, 3)
            await _announce(
                nc,
                ev.RecvTimedOut(
                    hive=hive, agent=agent, source=ev.SOURCE_HARNESS, waited_seconds=waited
                ),
            )
        return None
    try:
        event = decode_message(msg.subject, msg.data)
        if not isinstance(event, ev.MessageSent):
            raise MalformedEvent(f"{event.kind} on an inbox subject")
        received = Received(event)
    except MalformedEvent as exc:
        received = Received(None, str(exc), bytes(msg.data))
    await msg.ack_sync()  # handed over: ack, and only now (a crash before it redelivers)
    if announce:
        ids = [received.message.msg_id] if received.message else []
        await _announce(
            nc, ev.RecvDelivered(hive=hive, agent=agent, source=ev.SOURCE_HARNESS, message_ids=ids)
        )
    return received


async def _announce(nc: Client, event: ev.Event) -> None:
    try:
        await publish_event(nc.jetstream(), event)
    except (HyperhiveError, nats.errors.Error, TimeoutError) as exc:
        log.warning("could not publish %s: %s", event.kind, exc)
