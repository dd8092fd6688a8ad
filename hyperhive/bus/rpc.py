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
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from hyperhive.bus import auth, subjects
from hyperhive.bus.settle import settle
from hyperhive.commands import Command, decode_reply, encode_command, verb
from hyperhive.errors import InvalidSubject, NotConnected
from hyperhive.ids import new_id
from hyperhive.names import OPERATOR, ROLE_ADMIN, ROLE_OPERATOR, agent_role

log = logging.getLogger("hyperhive.bus")

JETSTREAM_HEADERS = ("Nats-Stream", "Nats-Sequence", "Nats-Subject", "Nats-Time-Stamp")
REQUEST_TIMEOUT = 5.0
REQUEST_ID = "Hyperhive-Request-Id"  # a command's id: its retries carry the same one
MAX_REQUEST_ID = 64
ATTEMPT = 2.0  # a command unanswered this long is sent again (normally answered in ~1 ms)
NO_RESPONDERS_GRACE = 2.0
# What a command may take when a cluster node dies under it: the stream's new
# leader is elected in 4-9 s (nats-server's raft), then c0re's publish is retried
# and read back. Callers that must ride out a failover wait this long.
COMMAND_BUDGET = 20.0


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
    await settle(nc)
    return server


async def request(
    nc: Client,
    subject: str,
    body: bytes,
    timeout: float = REQUEST_TIMEOUT,
    request_id: str | None = None,
) -> bytes:
    """Send one command and wait for its reply; `NotConnected` if nobody answers in time.

    With `request_id`, a request that got no answer within `ATTEMPT` seconds (lost
    with a dying node, or sent while the server's subscription was failing over)
    is sent again with the same id, until `timeout`: the server answers an id
    once (`Replies`), so a command is never carried out twice. "No responders"
    is waited out for `NO_RESPONDERS_GRACE` seconds (c0re reconnecting), then
    reported at once.
    """
    if request_id is None:
        return await _request_once(nc, subject, body, timeout, None)
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + timeout
    headers = {REQUEST_ID: request_id}
    while True:
        left = deadline - loop.time()
        if left <= 0:
            raise NotConnected(f"no answer on {subject} within {timeout:g}s")
        try:
            return await _request_once(nc, subject, body, min(ATTEMPT, left), headers)
        except NotConnected as exc:
            nobody = "nobody answers" in str(exc)
            if nobody and loop.time() - start > NO_RESPONDERS_GRACE:
                raise
            if loop.time() >= deadline:
                raise NotConnected(f"no answer on {subject} within {timeout:g}s") from None
            if nobody:
                await asyncio.sleep(0.1)  # c0re is (re)subscribing: give it a moment
            log.debug("rpc: %s; asking again (%s)", exc, request_id)


async def _request_once(
    nc: Client, subject: str, body: bytes, timeout: float, headers: dict[str, str] | None
) -> bytes:
    try:
        msg = await nc.request(subject, body, timeout=timeout, headers=headers)
    except nats.errors.NoRespondersError:
        raise NotConnected(f"nobody answers {subject}: is the hive's c0re running?") from None
    except (TimeoutError, nats.errors.TimeoutError):
        raise NotConnected(f"no answer on {subject} within {timeout:g}s") from None
    return bytes(msg.data)


class Replies:
    """The server side of retried requests: each (caller, request id) is carried out once.

    `begin` says whether a request is new (carry it out), already being carried
    out (its reply subject is added: every attempt gets the one answer), or
    answered before (the answer is returned, to send again). `finish` records
    the answer and returns every request waiting for it. Answers are kept for
    `KEEP` seconds, at most `MAX_KEPT` of them.
    """

    KEEP = 300.0
    MAX_KEPT = 4096

    def __init__(self) -> None:
        self._waiting: dict[tuple[str, str], list[Msg]] = {}
        self._answered: OrderedDict[tuple[str, str], tuple[float, bytes]] = OrderedDict()

    @staticmethod
    def key(call: Call) -> tuple[str, str] | None:
        rid = call.msg.headers.get(REQUEST_ID) if call.msg.headers else None
        if not rid or len(rid) > MAX_REQUEST_ID:
            return None
        return (call.caller, rid)

    def begin(self, call: Call) -> bool | bytes:
        """True: new, carry it out. False: under way (this attempt waits). bytes: answered."""
        key = self.key(call)
        if key is None:
            return True
        self._expire()
        if key in self._answered:
            return self._answered[key][1]
        if key in self._waiting:
            self._waiting[key].append(call.msg)
            return False
        self._waiting[key] = [call.msg]
        return True

    def finish(self, call: Call, answer: bytes) -> list[Msg]:
        """Every attempt of `call` to answer with `answer` (which is kept for the next)."""
        key = self.key(call)
        if key is None:
            return [call.msg]
        self._answered[key] = (time.monotonic(), answer)
        while len(self._answered) > self.MAX_KEPT:
            self._answered.popitem(last=False)
        return self._waiting.pop(key, [call.msg])

    def _expire(self) -> None:
        cutoff = time.monotonic() - self.KEEP
        while self._answered and next(iter(self._answered.values()))[0] < cutoff:
            self._answered.popitem(last=False)


async def wait_closed(server: Server) -> None:
    """Wait forever (a serve has no end of its own); unsubscribe when cancelled."""
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


async def command(
    nc: Client, hive: str, caller: str, cmd: Command, timeout: float = COMMAND_BUDGET
) -> dict[str, Any]:
    """Send one c0re command as `caller`; its result, or `CommandRefused` with c0re's reason.

    Sent again (the same request id) while it goes unanswered, for up to `timeout`:
    a command rides out a cluster node's death and is carried out once.
    """
    subject = subjects.command_subject(hive, caller, verb(cmd))
    body = encode_command(cmd)
    return decode_reply(await request(nc, subject, body, timeout, request_id=new_id()))
