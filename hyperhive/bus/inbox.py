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
import itertools
import json
import logging
from dataclasses import dataclass
from typing import Any

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import api as js_api
from nats.js import errors as js_errors

from hyperhive import events as ev
from hyperhive.backoff import Backoff
from hyperhive.bus import subjects
from hyperhive.bus.publish import publish_event
from hyperhive.bus.records import decode_message
from hyperhive.bus.retry import ATTEMPT_TIMEOUT, through_election
from hyperhive.errors import HyperhiveError, MalformedEvent, NotConnected

log = logging.getLogger("hyperhive.bus")

ACK_WAIT = 30.0  # a message handed out but never acked (a recv cancelled as it arrived) comes back
STATUS = "Status"
HEARTBEAT = "100"
EXPIRED = "408"
NO_MESSAGES = "404"
IDLE_HEARTBEAT = 1.0  # a waiting recv hears from the server this often
ANSWER_GRACE = 5.0  # after its wait, how long a recv waits for the server's last word
ANNOUNCE_BUDGET = 10.0  # recv.* facts are retried this long through a failover


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
    """Create the agent's inbox consumer if it does not exist (idempotent; retried through
    a leader election)."""
    js = nc.jetstream(timeout=ATTEMPT_TIMEOUT)
    stream = subjects.stream_name(hive)
    durable = subjects.inbox_durable(agent)
    try:
        await through_election(lambda: js.consumer_info(stream, durable), f"consumer {durable}")
        return
    except js_errors.NotFoundError:
        pass
    config = inbox_config(hive, agent)
    await through_election(lambda: js.add_consumer(stream, config), f"creating {durable}")


async def delete_inbox(nc: Client, hive: str, agent: str) -> None:
    """Remove the agent's inbox consumer (purge); a missing one is fine."""
    js = nc.jetstream(timeout=ATTEMPT_TIMEOUT)
    stream = subjects.stream_name(hive)
    durable = subjects.inbox_durable(agent)
    with contextlib.suppress(js_errors.NotFoundError):
        await through_election(lambda: js.delete_consumer(stream, durable), f"deleting {durable}")


async def inbox_depth(nc: Client, hive: str, agent: str) -> int:
    """Messages waiting in the agent's inbox (0 if it has none)."""
    js = nc.jetstream(timeout=ATTEMPT_TIMEOUT)
    stream = subjects.stream_name(hive)
    durable = subjects.inbox_durable(agent)
    try:
        info = await through_election(
            lambda: js.consumer_info(stream, durable), f"consumer {durable}"
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
    """One message of the inbox within `wait` seconds; None when the wait ran out.

    The pull request asks for idle heartbeats. One that goes silent (the node
    leading the inbox consumer died, a leader is being elected) is asked again
    for the time that is left, so a message sent meanwhile still comes to this
    call; one that ends early (a leadership change, no leader yet) likewise.
    Each request has its own reply subject: a late status of an earlier one
    never ends the wait, while a message from any of them is taken.
    """
    stream = subjects.stream_name(hive)
    durable = subjects.inbox_durable(agent)
    base = nc.new_inbox()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(0.0, wait)
    got: asyncio.Future[Msg | None] = loop.create_future()
    current = [""]  # the reply subject of the request in force
    ended = asyncio.Event()  # the request in force is over (a status other than a heartbeat)
    heard = [loop.time()]
    statuses: list[str] = []

    async def on_msg(msg: Msg) -> None:
        heard[0] = loop.time()
        if got.done():
            if msg.reply and subjects.is_js_ack(msg.reply):
                await msg.nak()  # arrived after we stopped waiting: give it back now
            return
        status = msg.headers.get(STATUS) if msg.headers else None
        if status is None:
            got.set_result(msg)
        elif status != HEARTBEAT and msg.subject == current[0]:
            statuses.append(status)
            ended.set()

    sub = await nc.subscribe(subjects.reply_inbox_pattern(base), cb=on_msg)
    retries = Backoff(first=0.05, cap=1.0)
    try:
        for n in itertools.count():
            left = deadline - loop.time()
            body: dict[str, object] = {"batch": 1}
            heartbeat = IDLE_HEARTBEAT if left >= 2 * IDLE_HEARTBEAT else 0.0
            if wait <= 0:
                body["no_wait"] = True
            else:
                body["expires"] = int(max(left, 0.001) * 1e9)
                if heartbeat:
                    body["idle_heartbeat"] = int(heartbeat * 1e9)
            current[0] = f"{base}.{n}"
            ended.clear()
            heard[0] = loop.time()
            await nc.publish(
                subjects.js_msg_next(stream, durable), json.dumps(body).encode(), reply=current[0]
            )
            lost = await _until_over(got, ended, heard, heartbeat, deadline + ANSWER_GRACE)
            if got.done():
                return got.result()
            if wait <= 0 or loop.time() >= deadline:
                return None  # the time is up (expired: "nothing came")
            if lost:
                log.info("recv %s: the pull request went silent; asking again", agent)
            elif statuses and statuses[-1] in (EXPIRED, NO_MESSAGES):
                if deadline - loop.time() < 0.05:
                    return None
            else:
                log.info("recv %s: pull ended (%s); asking again", agent, statuses[-1:])
                await asyncio.sleep(min(retries.next_delay(), max(0.0, deadline - loop.time())))
        return None  # unreachable: the loop returns
    finally:
        if not got.done():
            got.set_result(None)
        with contextlib.suppress(nats.errors.Error):
            await sub.unsubscribe()


async def _until_over(
    got: asyncio.Future[Msg | None],
    ended: asyncio.Event,
    heard: list[float],
    heartbeat: float,
    give_up: float,
) -> bool:
    """Wait for a message, the request's end, silence or `give_up`; True if it went silent."""
    loop = asyncio.get_running_loop()
    silence = 2 * heartbeat + 1.0 if heartbeat else 0.0
    while not got.done() and not ended.is_set():
        now = loop.time()
        if now >= give_up:
            return False
        if silence and now - heard[0] > silence:
            return True
        step = min(give_up - now, 0.5)
        end: asyncio.Future[Any] = asyncio.ensure_future(ended.wait())
        either: list[asyncio.Future[Any]] = [got, end]
        try:
            await asyncio.wait(either, timeout=step, return_when=asyncio.FIRST_COMPLETED)
        finally:
            end.cancel()
    return False


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
    # Handed over: ack, and only now (a crash before it redelivers). Through a
    # failover the ack goes to the consumer's new leader; if it never gets
    # there, the message comes again after ACK_WAIT (at least once, then).
    try:
        await through_election(lambda: msg.ack_sync(timeout=ATTEMPT_TIMEOUT), f"ack {agent}")
    except (nats.errors.Error, TimeoutError) as exc:
        log.warning("recv %s: the ack of %s was not confirmed: %s", agent, msg.subject, exc)
    if announce:
        ids = [received.message.msg_id] if received.message else []
        await _announce(
            nc, ev.RecvDelivered(hive=hive, agent=agent, source=ev.SOURCE_HARNESS, message_ids=ids)
        )
    return received


async def _announce(nc: Client, event: ev.Event) -> None:
    try:
        await publish_event(nc.jetstream(), event, retry_for=ANNOUNCE_BUDGET)
    except (HyperhiveError, nats.errors.Error, TimeoutError) as exc:
        log.warning("could not publish %s: %s", event.kind, exc)
