"""Request/reply on the bus: commands whose caller is who the subject says.

    sub = await serve(nc, [subjects.command_pattern(hive)], handle)   # c0re, a harness
    reply = await request(nc, subjects.command_subject(hive, me, "send"), body)

NATS permissions make sure only alice can publish on `...cmd.c0re.alice.<verb>`,
but the server itself can be made to publish there: a pull request or an API
request whose reply subject is someone else's command subject, or a push
consumer delivering to it. Such a message either has no reply subject, a
JetStream one (`$JS.ACK...`), or JetStream's headers. `trusted` accepts a
command only if its reply subject is under the caller role's own inbox prefix
(`_INBOX.hive.<hive>.agent-alice.`), which only alice of that hive may subscribe to, and it carries no
JetStream headers; anything else is dropped (and counted), never answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from hyperhive.bus import auth, subjects
from hyperhive.commands import Command, decode_reply, encode_command, verb
from hyperhive.errors import InvalidSubject, NotConnected
from hyperhive.names import OPERATOR, ROLE_ADMIN, ROLE_OPERATOR, agent_role

log = logging.getLogger("hyperhive.bus")

JETSTREAM_HEADERS = ("Nats-Stream", "Nats-Sequence", "Nats-Subject", "Nats-Time-Stamp")
REQUEST_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Call:
    """One trusted request: who called (an agent or `_operator`), which verb, what body."""

    hive: str
    caller: str
    verb: str
    body: bytes
    msg: Msg


def _operators(hive: str) -> tuple[str, ...]:
    """The reply prefixes of whoever may speak as the operator in `hive`."""
    return (auth.inbox_prefix(ROLE_OPERATOR), auth.inbox_prefix(ROLE_OPERATOR, hive))


def callers_prefixes(subject: str) -> tuple[str, str, str, tuple[str, ...]]:
    """(hive, caller, verb, the reply-inbox prefixes of who may send it) of a command subject."""
    try:
        cmd = subjects.parse_command_subject(subject)
        if cmd.caller == OPERATOR:
            return cmd.hive, cmd.caller, cmd.verb, _operators(cmd.hive)
        agent = auth.inbox_prefix(agent_role(cmd.caller), cmd.hive)
        return cmd.hive, cmd.caller, cmd.verb, (agent,)
    except InvalidSubject:
        h = subjects.parse_harness_subject(subject)  # raises InvalidSubject in turn
        prefixes = (*_operators(h.hive), auth.inbox_prefix(ROLE_ADMIN))
        return h.hive, OPERATOR, h.verb, prefixes


def trusted(msg: Msg) -> Call | None:
    """The call a message is, if it really comes from the caller its subject names."""
    try:
        hive, caller, verb, prefixes = callers_prefixes(msg.subject)
    except InvalidSubject:
        return None
    reply = msg.reply or ""
    if not any(reply.startswith(p + ".") for p in prefixes):
        return None
    if msg.headers and any(h in msg.headers for h in JETSTREAM_HEADERS):
        return None
    return Call(hive, caller, verb, msg.data, msg)


Handler = Callable[[Call], Awaitable[bytes]]


@dataclass
class Server:
    """A running `serve`: its subscriptions and what it dropped."""

    subscriptions: list[Subscription]
    dropped: int = 0

    async def stop(self) -> None:
        for sub in self.subscriptions:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()


async def serve(nc: Client, patterns: list[str], handle: Handler, queue: str = "") -> Server:
    """Answer trusted requests on `patterns` with `handle`'s reply; drop the rest.

    Requests are handled one at a time per subscription, in arrival order; a
    handler's exception is logged and answered with nothing (the caller times
    out), never allowed to end the subscription.
    """
    server = Server([])

    async def on_msg(msg: Msg) -> None:
        call = trusted(msg)
        if call is None:
            server.dropped += 1
            log.debug("rpc: dropped an untrusted message on %s (reply %r)", msg.subject, msg.reply)
            return
        try:
            reply = await handle(call)
        except Exception:
            log.exception("rpc: handler failed on %s", msg.subject)
            return
        with contextlib.suppress(nats.errors.Error):
            await msg.respond(reply)

    for pattern in patterns:
        server.subscriptions.append(await nc.subscribe(pattern, queue=queue, cb=on_msg))
    await nc.flush()
    return server


async def request(nc: Client, subject: str, body: bytes, timeout: float = REQUEST_TIMEOUT) -> bytes:
    """Send one command and wait for its reply; `NotConnected` if nobody answers in time."""
    try:
        msg = await nc.request(subject, body, timeout=timeout)
    except nats.errors.NoRespondersError:
        raise NotConnected(f"nobody answers {subject}: is the hive's c0re running?") from None
    except (TimeoutError, nats.errors.TimeoutError):
        raise NotConnected(f"no answer on {subject} within {timeout:g}s") from None
    return bytes(msg.data)


async def wait_closed(server: Server) -> None:
    """Wait forever (a serve has no end of its own); unsubscribe when cancelled."""
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


async def command(
    nc: Client, hive: str, caller: str, cmd: Command, timeout: float = REQUEST_TIMEOUT
) -> dict[str, Any]:
    """Send one c0re command as `caller`; its result, or `CommandRefused` with c0re's reason."""
    subject = subjects.command_subject(hive, caller, verb(cmd))
    return decode_reply(await request(nc, subject, encode_command(cmd), timeout))
