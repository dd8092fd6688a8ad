"""docs/security.md's permission table, cell by cell, against the live session server.

Every (action, role) cell of the table is performed with that role's own
credentials on a fresh connection, against a freshly made hive stream with the
inbox durables of alice and bob and the projector's durable in place; the
outcome must be the cell. Allowed means the server did it (a publish reached a
subscriber, a subscription got a message, a JetStream API request was answered,
even with an error); refused means the server sent the permissions violation
naming the subject. Neither within the deadline fails the test. A few rows ask
for more than an answer (a durable's config really changed, the stream really
stored a message): their checks say so.

Then the probe's D9, end to end: messages the *server* publishes on bob's
command subject (a pull or an API request whose reply subject is bob's, a push
consumer delivering there) reach `rpc.serve` and are dropped, while bob's own
request is answered; and what such messages do to a stream and a live view.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import api as js_api
from nats.js import errors as js_errors

from hyperhive import names
from hyperhive.bus import auth, rpc, subjects
from hyperhive.bus.filters import EventFilter
from hyperhive.bus.live import open_live_events
from hyperhive.bus.server import EmbeddedServer
from hyperhive.bus.settle import settle
from hyperhive.bus.stream import ensure_stream
from hyperhive.config import StreamConfig
from hyperhive.errors import MalformedEvent
from tests.helpers import wait_until

pytestmark = pytest.mark.nats

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
COLUMNS = ("admin", "operator", "hive operator", "agent")
ALICE, BOB = "alice", "bob"
# column -> (role, a hive's own role?): the hive operator and alice act in the world's hive
ROLE_OF = {
    "admin": (auth.ADMIN, False),
    "operator": (auth.OPERATOR, False),
    "hive operator": (auth.OPERATOR, True),
    "agent": (names.agent_role(ALICE), True),
}
WAIT = 5.0  # for an answer or a violation; both come at once when they come
LIMITS = StreamConfig(max_bytes=8 * 1024 * 1024)
SCRATCH = "PERMS_SCRATCH"  # what `stream-create` creates (deleted after each test)
OTHER = "PERMS_OTHER"  # another stream (as another hive's would be) on `perms-other.>`
OTHER_SUBJECT = "perms-other.x"
LONG_NS = 30_000_000_000  # an ephemeral's inactive threshold, in ns


# ---------------------------------------------------------------- the table


def read_table(path: Path = DOC) -> dict[str, dict[str, bool]]:
    """{action id: {role column: allowed}} of the one table with the role columns."""
    tables: list[dict[str, dict[str, bool]]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        cells = _cells(lines[i])
        if cells is None or tuple(c.lower() for c in cells[-len(COLUMNS) :]) != COLUMNS:
            i += 1
            continue
        table: dict[str, dict[str, bool]] = {}
        i += 2  # the header and its |---| line
        while i < len(lines) and (row := _cells(lines[i])) is not None:
            m = re.fullmatch(r"`([a-z0-9-]+)`", row[0])
            assert m, f"{path.name}:{i + 1}: the action cell must be an id in backticks: {row[0]!r}"
            assert len(row) == len(cells), f"{path.name}:{i + 1}: {len(row)} cells"
            assert m.group(1) not in table, f"{path.name}:{i + 1}: {m.group(1)} twice"
            verdicts = [c.lower() for c in row[-len(COLUMNS) :]]
            assert set(verdicts) <= {"yes", "no"}, f"{path.name}:{i + 1}: yes/no only: {row}"
            table[m.group(1)] = {col: v == "yes" for col, v in zip(COLUMNS, verdicts, strict=True)}
            i += 1
        tables.append(table)
    assert len(tables) == 1, f"{path.name} must have one table with columns {COLUMNS}"
    return tables[0]


def _cells(line: str) -> list[str] | None:
    line = line.strip()
    if not (line.startswith("|") and line.endswith("|")):
        return None
    return [c.strip() for c in line[1:-1].split("|")]


TABLE = read_table()
CELLS = [
    pytest.param(action, column, allowed, id=f"{column}-{action}")
    for action, row in TABLE.items()
    for column, allowed in row.items()
]


# ---------------------------------------------------------------- a hive with alice and bob


def other_hive(hive: str) -> str:
    """Another hive on the same server, with an alice and a bob of its own."""
    return f"{hive}-o"


@pytest.fixture(scope="module")
def agent_hive(nats_server: EmbeddedServer) -> str:
    """The hive alice and bob belong to on the session server (its auth.conf gains them,
    and the hive's own operator); another hive has an alice and a bob too."""
    state = nats_server.state_dir
    hive = f"perms{os.getpid() % 10000}"
    for h in (hive, other_hive(hive)):
        for agent in (ALICE, BOB):
            auth.ensure_credentials(state, names.agent_role(agent), h)
        auth.ensure_credentials(state, auth.OPERATOR, h)
    if nats_server.running:
        nats_server.reload()  # rewrites auth.conf with every known user, then SIGHUP
    else:
        nats_server.start()
    return hive


async def login(
    url: str,
    state: Path,
    role: str,
    errors: asyncio.Queue[Exception],
    hive: str | None = None,
) -> Client:
    """A plain client as `role` (of `hive`, a hive's own role), its asynchronous errors
    into `errors`.

    Retried while the server has not yet loaded a new user (a reload is a SIGHUP).
    """
    creds = auth.read_credentials(auth.credentials_path(state, role, hive))

    async def on_error(exc: Exception) -> None:
        errors.put_nowait(exc)

    last: list[Exception] = []

    async def logged_in() -> Client | None:
        client = Client()
        try:
            await client.connect(
                servers=[url],
                user=creds.user,
                password=creds.password,
                inbox_prefix=auth.inbox_prefix(role, hive),
                allow_reconnect=False,
                connect_timeout=2,
                error_cb=on_error,
            )
            return client
        except (nats.errors.Error, OSError) as exc:
            last[:] = [exc]
            await client.close()
            while not errors.empty():  # the refused attempt's own complaint
                errors.get_nowait()
            return None

    # the reload is on its way: retried inside a deadline
    client: Client = await wait_until(
        logged_in, 10, lambda: f"a login as {role} (last: {last})", interval=0.05
    )
    return client


def inbox_config(hive: str, agent: str) -> dict[str, Any]:
    durable = subjects.inbox_durable(agent)
    return {
        "name": durable,
        "durable_name": durable,
        "filter_subject": subjects.inbox_subject(hive, agent),
        "ack_policy": "explicit",
    }


PROJECTOR_CONFIG: dict[str, Any] = {
    "name": subjects.PROJECTOR_DURABLE,
    "durable_name": subjects.PROJECTOR_DURABLE,
    "ack_policy": "explicit",
}


def body(value: object) -> bytes:
    return json.dumps(value).encode()


@dataclass
class World:
    """The session server, the hive's fresh stream and durables, an admin connection."""

    server: EmbeddedServer
    hive: str
    admin: Client
    clients: list[Client] = field(default_factory=list)

    @property
    def stream(self) -> str:
        return subjects.stream_name(self.hive)

    @property
    def other(self) -> str:
        """Another hive on the server, with its own alice and bob."""
        return other_hive(self.hive)

    @property
    def other_stream(self) -> str:
        return subjects.stream_name(self.other)

    async def connect(
        self, role: str, hive: str | None = None
    ) -> tuple[Client, asyncio.Queue[Exception]]:
        """A fresh connection as `role`; an agent's (or with `hive`) of this hive."""
        errors: asyncio.Queue[Exception] = asyncio.Queue()
        scope = self.hive if names.is_agent_role(role) else hive
        client = await login(self.server.url, self.server.state_dir, role, errors, scope)
        self.clients.append(client)
        return client, errors

    async def api(self, subject: str, payload: bytes = b"") -> dict[str, Any]:
        """An admin JetStream API request; its JSON answer."""
        msg = await self.admin.request(subject, payload, timeout=WAIT)
        answer: dict[str, Any] = json.loads(msg.data)
        return answer

    async def foreign_stream(self) -> None:
        await self.admin.jetstream().add_stream(
            js_api.StreamConfig(
                name=OTHER, subjects=["perms-other.>"], storage=js_api.StorageType.MEMORY
            )
        )

    async def subjects_in(self, stream: str) -> list[str]:
        """The subject of every message of `stream`, in order."""
        js = self.admin.jetstream()
        last = int((await js.stream_info(stream)).state.last_seq)
        return [str((await js.get_msg(stream, seq)).subject) for seq in range(1, last + 1)]

    async def stored_on(self, subject: str) -> bytes | None:
        """The data of the stream's last message on `subject`, None if there is none."""
        try:
            msg = await self.admin.jetstream().get_last_msg(self.stream, subject)
        except js_errors.NotFoundError:
            return None
        return bytes(msg.data or b"")


@pytest.fixture
async def world(server: EmbeddedServer, agent_hive: str) -> AsyncIterator[World]:
    admin = await login(server.url, server.state_dir, auth.ADMIN, asyncio.Queue())
    w = World(server, agent_hive, admin)
    js = admin.jetstream(timeout=30)  # a loaded machine: the setup must not be what fails
    for hive, stream in ((w.hive, w.stream), (w.other, w.other_stream)):
        with contextlib.suppress(js_errors.NotFoundError):
            await js.delete_stream(stream)  # whatever an earlier cell did to it
        await ensure_stream(js, hive, LIMITS)
        for config in (inbox_config(hive, ALICE), inbox_config(hive, BOB), PROJECTOR_CONFIG):
            answer = await w.api(
                api("CONSUMER", "CREATE", stream, config["name"]), _create(stream, config)
            )
            assert "error" not in answer, answer
    try:
        yield w
    finally:
        for client in w.clients:
            await client.close()
        for stream in (SCRATCH, OTHER, w.stream, w.other_stream):
            with contextlib.suppress(js_errors.NotFoundError):
                await js.delete_stream(stream)
        await admin.close()


# ---------------------------------------------------------------- performing one action


@dataclass
class Probe:
    """One role's fresh connection in the world, and how to tell allowed from refused."""

    w: World
    role: str
    me: Client
    errors: asyncio.Queue[Exception]

    @property
    def hive(self) -> str:
        return self.w.hive

    @property
    def stream(self) -> str:
        return self.w.stream

    @staticmethod
    def signal() -> tuple[asyncio.Future[Msg], Callable[[Msg], Awaitable[None]]]:
        """A future and a subscription callback that resolves it with the first message."""
        got: asyncio.Future[Msg] = asyncio.get_running_loop().create_future()

        async def cb(msg: Msg) -> None:
            if not got.done():
                got.set_result(msg)

        return got, cb

    async def _violation(self, verb: str, subject: str) -> str:
        needle = f'permissions violation for {verb} to "{subject}"'.lower()
        while True:
            text = str(await self.errors.get())
            if needle in text.lower():
                return text

    async def decide(self, done: asyncio.Future[Any], verb: str, subject: str) -> bool:
        """True when `done` resolves, False on the violation of `verb` on `subject`."""
        refused = asyncio.ensure_future(self._violation(verb, subject))
        try:
            finished, _ = await asyncio.wait(
                {done, refused}, timeout=WAIT, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            refused.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refused
        if done in finished and refused in finished:
            raise AssertionError(f"{self.role}: {subject} was both done and refused")
        if refused in finished:
            return False
        if done in finished:
            return True
        raise AssertionError(
            f"{self.role}: neither done nor refused ({verb} {subject}) within {WAIT:.0f}s"
        )

    async def publish(self, subject: str, data: bytes = b"{}", reply: str = "") -> bool:
        """Allowed if an admin subscriber on `subject` receives it."""
        got, cb = self.signal()
        sub = await self.w.admin.subscribe(subject, cb=cb)
        await settle(self.w.admin)
        try:
            await self.me.publish(subject, data, reply=reply)
            await self.me.flush()
            return await self.decide(got, "publish", subject)
        finally:
            await sub.unsubscribe()

    async def subscribe(self, pattern: str, probe: str) -> bool:
        """Allowed if a subscription on `pattern` receives what an admin publishes on `probe`."""
        got, cb = self.signal()
        await self.me.subscribe(pattern, cb=cb)
        await settle(self.me)
        await self.w.admin.publish(probe, b"probe")
        await self.w.admin.flush()
        return await self.decide(got, "subscription", pattern)

    async def request(self, subject: str, payload: bytes = b"") -> Msg | None:
        """The server's answer (any answer: allowed), or None if refused."""
        got, cb = self.signal()
        inbox = self.me.new_inbox()
        await self.me.subscribe(inbox, cb=cb)
        await self.me.publish(subject, payload, reply=inbox)
        await self.me.flush()
        return got.result() if await self.decide(got, "publish", subject) else None

    async def answered(self, subject: str, payload: bytes = b"") -> bool:
        return await self.request(subject, payload) is not None


Action = Callable[[Probe], Awaitable[bool]]
ACTIONS: dict[str, Action] = {}


def action(name: str) -> Callable[[Action], Action]:
    def register(fn: Action) -> Action:
        ACTIONS[name] = fn
        return fn

    return register


def api(*tokens: str) -> str:
    return subjects.js_api(*tokens)


NO_WAIT = body({"batch": 1, "no_wait": True})  # answered at once, a message or 404
PULL_ONE = body({"batch": 1, "expires": 2_000_000_000})  # waits for a just-stored message


# -- publishing on hive subjects


@action("pub-own-turn-event")
async def _pub_own_turn(p: Probe) -> bool:
    return await p.publish(subjects.event_subject(p.hive, ALICE, "turn.started"))


@action("pub-bob-event")
async def _pub_bob_event(p: Probe) -> bool:
    return await p.publish(subjects.event_subject(p.hive, BOB, "turn.started"))


@action("pub-hive-wide-event")
async def _pub_hive_wide(p: Probe) -> bool:
    return await p.publish(subjects.event_subject(p.hive, None, "hive.started"))


@action("pub-bob-inbox")
async def _pub_bob_inbox(p: Probe) -> bool:
    return await p.publish(subjects.inbox_subject(p.hive, BOB))


@action("cmd-as-alice")
async def _cmd_alice(p: Probe) -> bool:
    return await p.publish(subjects.command_subject(p.hive, ALICE, "send"))


@action("cmd-as-bob")
async def _cmd_bob(p: Probe) -> bool:
    return await p.publish(subjects.command_subject(p.hive, BOB, "send"))


@action("cmd-as-operator")
async def _cmd_operator(p: Probe) -> bool:
    return await p.publish(subjects.command_subject(p.hive, names.OPERATOR, "spawn"))


@action("harness-cmd-alice")
async def _harness_cmd(p: Probe) -> bool:
    return await p.publish(subjects.harness_command_subject(p.hive, ALICE, "cancel_turn"))


@action("reply-to-operator-inbox")
async def _reply_operator(p: Probe) -> bool:
    return await p.publish(auth.inbox_prefix(auth.OPERATOR) + ".probe")


# -- subscribing


@action("sub-hive-events")
async def _sub_events(p: Probe) -> bool:
    return await p.subscribe(
        subjects.all_events_pattern(p.hive), subjects.event_subject(p.hive, BOB, "turn.started")
    )


@action("sub-bob-inbox")
async def _sub_bob_inbox(p: Probe) -> bool:
    inbox = subjects.inbox_subject(p.hive, BOB)
    return await p.subscribe(inbox, inbox)


@action("sub-alice-harness")
async def _sub_harness(p: Probe) -> bool:
    return await p.subscribe(
        subjects.harness_command_pattern(p.hive, ALICE),
        subjects.harness_command_subject(p.hive, ALICE, "cancel_turn"),
    )


@action("sub-other-reply-inbox")
async def _sub_other_inbox(p: Probe) -> bool:
    prefix = auth.inbox_prefix(names.agent_role(BOB), p.hive)
    return await p.subscribe(subjects.reply_inbox_pattern(prefix), prefix + ".probe")


# -- the JetStream API: streams


@action("api-info")
async def _api_info(p: Probe) -> bool:
    return await p.answered(api("INFO"))


@action("stream-info")
async def _stream_info(p: Probe) -> bool:
    return await p.answered(api("STREAM", "INFO", p.stream))


@action("stream-names")
async def _stream_names(p: Probe) -> bool:
    return await p.answered(api("STREAM", "NAMES"), b"{}")


@action("stream-list")
async def _stream_list(p: Probe) -> bool:
    return await p.answered(api("STREAM", "LIST"), b"{}")


@action("stream-create")
async def _stream_create(p: Probe) -> bool:
    config = {
        "name": SCRATCH,
        "subjects": ["perms-scratch.>"],
        "storage": "memory",
        "max_bytes": 1 << 20,
    }
    return await p.answered(api("STREAM", "CREATE", SCRATCH), body(config))


@action("stream-update")
async def _stream_update(p: Probe) -> bool:
    config = (await p.w.api(api("STREAM", "INFO", p.stream)))["config"]
    return await p.answered(api("STREAM", "UPDATE", p.stream), body(config))


@action("stream-delete")
async def _stream_delete(p: Probe) -> bool:
    return await p.answered(api("STREAM", "DELETE", p.stream))


@action("stream-purge")
async def _stream_purge(p: Probe) -> bool:
    return await p.answered(api("STREAM", "PURGE", p.stream), b"{}")


@action("stream-msg-get")
async def _msg_get(p: Probe) -> bool:
    return await p.answered(api("STREAM", "MSG", "GET", p.stream), body({"seq": 1}))


@action("stream-msg-delete")
async def _msg_delete(p: Probe) -> bool:
    return await p.answered(api("STREAM", "MSG", "DELETE", p.stream), body({"seq": 1}))


@action("direct-get")
async def _direct_get(p: Probe) -> bool:
    return await p.answered(api("DIRECT", "GET", p.stream), body({"seq": 1}))


# -- the JetStream API: consumers


def _create(stream: str, config: dict[str, Any]) -> bytes:
    return body({"stream_name": stream, "config": config})


def _ephemeral(name: str) -> dict[str, Any]:
    return {"name": name, "ack_policy": "none", "inactive_threshold": LONG_NS}


@action("consumer-create-ephemeral")
async def _create_ephemeral(p: Probe) -> bool:
    name = f"own-{p.role}"
    return await p.answered(
        api("CONSUMER", "CREATE", p.stream, name), _create(p.stream, _ephemeral(name))
    )


@action("consumer-durable-create")
async def _durable_create(p: Probe) -> bool:
    name = f"durable-{p.role}"
    config = {"durable_name": name, "ack_policy": "explicit"}
    return await p.answered(
        api("CONSUMER", "DURABLE", "CREATE", p.stream, name), _create(p.stream, config)
    )


@action("consumer-create-projector")
async def _create_projector(p: Probe) -> bool:
    return await p.answered(
        api("CONSUMER", "CREATE", p.stream, subjects.PROJECTOR_DURABLE),
        _create(p.stream, PROJECTOR_CONFIG),
    )


@action("consumer-create-inbox-bob")
async def _create_inbox_bob(p: Probe) -> bool:
    return await p.answered(
        api("CONSUMER", "CREATE", p.stream, subjects.inbox_durable(BOB)),
        _create(p.stream, inbox_config(p.hive, BOB)),
    )


@action("consumer-create-filtered-inbox-bob")
async def _create_filtered_inbox_bob(p: Probe) -> bool:
    return await p.answered(
        api(
            "CONSUMER",
            "CREATE",
            p.stream,
            subjects.inbox_durable(BOB),
            subjects.inbox_subject(p.hive, BOB),
        ),
        _create(p.stream, inbox_config(p.hive, BOB)),
    )


@action("consumer-create-legacy-inbox-bob")
async def _rewrite_inbox_bob(p: Probe) -> bool:
    """Yes only if inbox-bob's config really changed (the server's answer alone is not enough)."""
    durable = subjects.inbox_durable(BOB)
    config = {**inbox_config(p.hive, BOB), "description": f"rewritten by {p.role}"}
    del config["durable_name"]  # the nameless subject refuses a durable name, not a name
    if await p.request(api("CONSUMER", "CREATE", p.stream), _create(p.stream, config)) is None:
        return False
    info = await p.w.admin.jetstream().consumer_info(p.stream, durable)
    return bool(info.config.description == config["description"])


def _consumer_action(verb: str, consumer: Callable[[str], str], payload: bytes = b"") -> Action:
    async def act(p: Probe) -> bool:
        name = consumer(p.hive)
        subject = (
            subjects.js_msg_next(p.stream, name)
            if verb == "NEXT"
            else api("CONSUMER", verb, p.stream, name)
        )
        return await p.answered(subject, payload)

    return act


def _alice(hive: str) -> str:
    return subjects.inbox_durable(ALICE)


def _bob(hive: str) -> str:
    return subjects.inbox_durable(BOB)


def _projector(hive: str) -> str:
    return subjects.PROJECTOR_DURABLE


for _verb, _name in (("INFO", "info"), ("NEXT", "next"), ("DELETE", "delete")):
    _payload = NO_WAIT if _verb == "NEXT" else b""
    if _verb != "DELETE":
        action(f"consumer-{_name}-inbox-alice")(_consumer_action(_verb, _alice, _payload))
    action(f"consumer-{_name}-inbox-bob")(_consumer_action(_verb, _bob, _payload))
    action(f"consumer-{_name}-projector")(_consumer_action(_verb, _projector, _payload))


@action("consumer-delete-ephemeral")
async def _delete_ephemeral(p: Probe) -> bool:
    """Its own if it may create one; else (an agent) one the admin made."""
    name = f"eph-{p.role}"
    create = api("CONSUMER", "CREATE", p.stream, name), _create(p.stream, _ephemeral(name))
    if await p.request(*create) is None:
        await p.w.api(*create)
    return await p.answered(api("CONSUMER", "DELETE", p.stream, name))


@action("consumer-names")
async def _consumer_names(p: Probe) -> bool:
    return await p.answered(api("CONSUMER", "NAMES", p.stream), b"{}")


@action("consumer-list")
async def _consumer_list(p: Probe) -> bool:
    return await p.answered(api("CONSUMER", "LIST", p.stream), b"{}")


@action("ack-inbox-alice")
async def _ack(p: Probe) -> bool:
    """Ack a real delivery of inbox-alice (fetched by the admin); yes only if it took."""
    js = p.w.admin.jetstream()
    durable = subjects.inbox_durable(ALICE)
    await js.publish(subjects.inbox_subject(p.hive, ALICE), b"{}")
    got, cb = p.signal()  # not admin.request: a delivery keeps its stored subject
    inbox = p.w.admin.new_inbox()
    sub = await p.w.admin.subscribe(inbox, cb=cb)
    await p.w.admin.publish(subjects.js_msg_next(p.stream, durable), PULL_ONE, reply=inbox)
    delivery = await asyncio.wait_for(got, WAIT)
    await sub.unsubscribe()
    assert subjects.is_js_ack(delivery.reply), delivery.headers
    if not await p.publish(delivery.reply, b"+ACK"):
        return False

    async def acked() -> bool:
        return int((await js.consumer_info(p.stream, durable)).num_ack_pending) == 0

    await wait_until(acked, WAIT, what="the ack to take")
    return True


@action("reply-into-bob-event")
async def _reply_into_stream(p: Probe) -> bool:
    """`$JS.API.INFO` answered onto bob's event subject: yes if the stream stored the answer."""
    target = subjects.event_subject(p.hive, BOB, "turn.started")
    got, cb = p.signal()
    sub = await p.w.admin.subscribe(target, cb=cb)
    await settle(p.w.admin)
    try:
        await p.me.publish(api("INFO"), b"", reply=target)
        await p.me.flush()
        if not await p.decide(got, "publish", api("INFO")):
            return False
    finally:
        await sub.unsubscribe()
    with contextlib.suppress(AssertionError):
        stored = await wait_until(lambda: p.w.stored_on(target), 2, what="the stored answer")
        return b"account_info_response" in stored
    return False


@action("push-into-hive-stream")
async def _push_into_stream(p: Probe) -> bool:
    """A push consumer on another stream delivering on bob's event subject: stored in the hive?"""
    await p.w.foreign_stream()
    await p.w.admin.jetstream().publish(OTHER_SUBJECT, b"{}")
    target = subjects.event_subject(p.hive, BOB, "turn.started")
    await p.w.admin.subscribe(target, cb=_ignore)  # a push consumer delivers only to interest
    await settle(p.w.admin)
    name = f"push-{p.role}"
    config = {**_ephemeral(name), "deliver_subject": target, "deliver_policy": "all"}
    answer = await p.request(api("CONSUMER", "CREATE", OTHER, name), _create(OTHER, config))
    if answer is None or "error" in json.loads(answer.data):
        return False

    async def stored() -> bool:
        return OTHER_SUBJECT in await p.w.subjects_in(p.stream)

    with contextlib.suppress(AssertionError):
        return bool(await wait_until(stored, 2, what="the delivery stored in the hive's stream"))
    return False


@action("pull-copy-into-stream")
async def _pull_into_stream(p: Probe) -> bool:
    """A pull (from inbox-alice; the operator: its own ephemeral) replying on another
    stream's subject: does that stream store the delivery?"""
    await p.w.foreign_stream()
    alice_inbox = subjects.inbox_subject(p.hive, ALICE)
    await p.w.admin.jetstream().publish(alice_inbox, b"{}")
    consumer = subjects.inbox_durable(ALICE)
    if p.role == auth.OPERATOR:
        consumer = f"pull-{p.role}"
        config = {**_ephemeral(consumer), "filter_subject": alice_inbox}
        if not await p.answered(
            api("CONSUMER", "CREATE", p.stream, consumer), _create(p.stream, config)
        ):
            return False
    pull = subjects.js_msg_next(p.stream, consumer)
    await p.me.publish(pull, PULL_ONE, reply=OTHER_SUBJECT)
    await p.me.flush()

    async def copied() -> bool:
        return alice_inbox in await p.w.subjects_in(OTHER)

    async def until_copied() -> None:  # decide's deadline ends it first
        await wait_until(copied, 2 * WAIT, what="the copy in the other stream")

    copy = asyncio.ensure_future(until_copied())
    try:
        return await p.decide(copy, "publish", pull)
    finally:
        copy.cancel()
        with contextlib.suppress(asyncio.CancelledError, AssertionError):
            await copy


async def _ignore(msg: Msg) -> None:
    return None


# -- another hive on the same server, whose agents have the same names


@action("other-cmd-as-alice")
async def _other_cmd_alice(p: Probe) -> bool:
    return await p.publish(subjects.command_subject(p.w.other, ALICE, "send"))


@action("other-cmd-as-operator")
async def _other_cmd_operator(p: Probe) -> bool:
    return await p.publish(subjects.command_subject(p.w.other, names.OPERATOR, "spawn"))


@action("other-harness-cmd")
async def _other_harness_cmd(p: Probe) -> bool:
    return await p.publish(subjects.harness_command_subject(p.w.other, ALICE, "cancel_turn"))


@action("other-pub-alice-event")
async def _other_pub_alice(p: Probe) -> bool:
    return await p.publish(subjects.event_subject(p.w.other, ALICE, "turn.started"))


@action("other-sub-events")
async def _other_sub_events(p: Probe) -> bool:
    return await p.subscribe(
        subjects.all_events_pattern(p.w.other),
        subjects.event_subject(p.w.other, BOB, "turn.started"),
    )


@action("other-sub-alice-harness")
async def _other_sub_harness(p: Probe) -> bool:
    return await p.subscribe(
        subjects.harness_command_pattern(p.w.other, ALICE),
        subjects.harness_command_subject(p.w.other, ALICE, "cancel_turn"),
    )


@action("other-sub-alice-reply-inbox")
async def _other_sub_reply_inbox(p: Probe) -> bool:
    prefix = auth.inbox_prefix(names.agent_role(ALICE), p.w.other)
    return await p.subscribe(subjects.reply_inbox_pattern(prefix), prefix + ".probe")


@action("other-stream-info")
async def _other_stream_info(p: Probe) -> bool:
    return await p.answered(api("STREAM", "INFO", p.w.other_stream))


@action("other-direct-get")
async def _other_direct_get(p: Probe) -> bool:
    return await p.answered(api("DIRECT", "GET", p.w.other_stream), body({"seq": 1}))


@action("other-consumer-create-ephemeral")
async def _other_create_ephemeral(p: Probe) -> bool:
    name = f"own-{p.role}"
    stream = p.w.other_stream
    return await p.answered(
        api("CONSUMER", "CREATE", stream, name), _create(stream, _ephemeral(name))
    )


@action("other-consumer-info-inbox-alice")
async def _other_info_alice(p: Probe) -> bool:
    return await p.answered(
        api("CONSUMER", "INFO", p.w.other_stream, subjects.inbox_durable(ALICE))
    )


@action("other-consumer-next-inbox-alice")
async def _other_next_alice(p: Probe) -> bool:
    pull = subjects.js_msg_next(p.w.other_stream, subjects.inbox_durable(ALICE))
    return await p.answered(pull, NO_WAIT)


@action("push-into-other-hive")
async def _push_into_other_hive(p: Probe) -> bool:
    """A push consumer on the hive's own stream delivering into the other hive's stream."""
    js = p.w.admin.jetstream()
    await js.publish(subjects.event_subject(p.hive, BOB, "turn.started"), b"{}")
    target = subjects.event_subject(p.w.other, ALICE, "turn.started")
    await p.w.admin.subscribe(target, cb=_ignore)  # a push consumer delivers only to interest
    await settle(p.w.admin)
    name = f"push-{p.role}"
    config = {**_ephemeral(name), "deliver_subject": target, "deliver_policy": "all"}
    answer = await p.request(api("CONSUMER", "CREATE", p.stream, name), _create(p.stream, config))
    if answer is None or "error" in json.loads(answer.data):
        return False

    async def stored() -> bool:
        return bool(await p.w.subjects_in(p.w.other_stream))

    with contextlib.suppress(AssertionError):
        return bool(await wait_until(stored, 2, what="the delivery stored in the other hive"))
    return False


# ---------------------------------------------------------------- the tests


def test_the_table_and_the_checks_name_the_same_actions() -> None:
    assert sorted(TABLE) == sorted(ACTIONS)


@pytest.mark.parametrize(("action_id", "column", "allowed"), CELLS)
async def test_role_may_do_what_the_table_says(
    world: World, action_id: str, column: str, allowed: bool
) -> None:
    role, own = ROLE_OF[column]
    me, errors = await world.connect(role, world.hive if own else None)
    did = await ACTIONS[action_id](Probe(world, role, me, errors))
    want = "yes" if allowed else "no"
    assert did == allowed, (
        f"docs/security.md says {want} for {column} {action_id}; server: {'yes' if did else 'no'}"
    )


# ---------------------------------------------------------------- D9: reply-subject tricks


async def test_server_made_messages_on_bobs_command_subject_are_dropped_not_served(
    world: World,
) -> None:
    hive, stream, admin = world.hive, world.stream, world.admin
    calls: list[rpc.Call] = []

    async def handle(call: rpc.Call) -> bytes:
        calls.append(call)
        return b"ok"

    victim = await rpc.serve(admin, [subjects.command_pattern(hive)], handle)
    bob_cmd = subjects.command_subject(hive, BOB, "send")
    seen: list[Msg] = []  # everything the server delivered on bob's command subject

    async def raw(msg: Msg) -> None:
        seen.append(msg)

    await admin.subscribe(bob_cmd, cb=raw)
    await settle(admin)  # the raw subscription and the victim's
    alice, alice_errors = await world.connect(names.agent_role(ALICE))
    operator, operator_errors = await world.connect(auth.OPERATOR)
    await admin.jetstream().publish(subjects.inbox_subject(hive, ALICE), b'{"text": "hi"}')

    # (a) alice pulls from her inbox with bob's command subject as the reply
    await alice.publish(
        subjects.js_msg_next(stream, subjects.inbox_durable(ALICE)), PULL_ONE, reply=bob_cmd
    )
    await alice.flush()
    await wait_until(lambda: len(seen) >= 1, WAIT, what="the pulled message on bob's subject")
    assert subjects.is_js_ack(seen[0].reply)

    # (b) alice asks for account info with bob's command subject as the reply
    await alice.publish(api("INFO"), b"", reply=bob_cmd)
    await alice.flush()
    await wait_until(lambda: len(seen) >= 2, WAIT, what="the INFO answer on bob's subject")
    assert not seen[1].reply
    assert b"account_info_response" in seen[1].data

    # (c) the operator makes a push consumer deliver to bob's command subject
    push = "d9-push"
    config = {
        "name": push,
        "deliver_subject": bob_cmd,
        "ack_policy": "none",
        "deliver_policy": "all",
        "filter_subject": subjects.inbox_subject(hive, ALICE),
        "inactive_threshold": LONG_NS,
    }
    answer = await operator.request(
        api("CONSUMER", "CREATE", stream, push), _create(stream, config), timeout=WAIT
    )
    created = "error" not in json.loads(answer.data)
    if created:  # this server version does not check the deliver subject: it delivers
        await wait_until(lambda: len(seen) >= 3, WAIT, what="the push delivery on bob's subject")
        assert subjects.is_js_ack(seen[2].reply)
    tricks = len(seen)
    # The push consumer delivers every message alice's inbox holds: at least one.
    assert tricks >= (3 if created else 2)

    await wait_until(lambda: victim.dropped >= tricks, WAIT, what="the rpc server to drop them")
    assert calls == []
    assert victim.dropped == tricks
    # NATS refused none of it: reply and deliver subjects are not checked
    assert alice_errors.empty()
    assert operator_errors.empty()

    # bob himself, replying under his own inbox prefix, is answered
    bob, _ = await world.connect(names.agent_role(BOB))
    assert await rpc.request(bob, bob_cmd, b"{}") == b"ok"
    assert [(c.caller, c.verb) for c in calls] == [(BOB, "send")]
    assert victim.dropped == tricks
    await victim.stop()


async def test_a_pull_replying_on_a_stream_subject_stores_the_delivery_again(world: World) -> None:
    """Under its own subject (not bob's), and not within the duplicate window of its msg id."""
    js = world.admin.jetstream()
    stream, alice_inbox = world.stream, subjects.inbox_subject(world.hive, ALICE)
    await js.publish(alice_inbox, b'{"n": 1}', headers={"Nats-Msg-Id": "perms-1"})
    await js.publish(alice_inbox, b'{"n": 2}')
    alice, errors = await world.connect(names.agent_role(ALICE))

    for _ in range(2):
        await alice.publish(
            subjects.js_msg_next(stream, subjects.inbox_durable(ALICE)),
            PULL_ONE,
            reply=subjects.inbox_subject(world.hive, BOB),
        )
    await alice.flush()

    async def ours() -> list[tuple[str, bytes]]:
        """What the stream holds of this test's two messages: a message left over by an
        earlier test on the same hive is not ours to count."""
        last = int((await js.stream_info(stream)).state.last_seq)
        stored = [await js.get_msg(stream, seq) for seq in range(1, last + 1)]
        pairs = [(str(m.subject), bytes(m.data or b"")) for m in stored]
        return [(subject, data) for subject, data in pairs if data in (b'{"n": 1}', b'{"n": 2}')]

    async def copied() -> bool:
        return len(await ours()) >= 3

    await wait_until(copied, WAIT, what="the second copy")
    # the copy of n2 is stored under alice's subject; the copy of n1 was a duplicate
    assert await ours() == [
        (alice_inbox, b'{"n": 1}'),
        (alice_inbox, b'{"n": 2}'),
        (alice_inbox, b'{"n": 2}'),
    ]
    bob_inbox = await js.consumer_info(stream, subjects.inbox_durable(BOB))
    assert bob_inbox.num_pending == 0
    assert errors.empty()


async def test_a_live_view_drops_a_push_redelivery_but_shows_a_servers_answer(
    world: World,
) -> None:
    hive, admin = world.hive, world.admin
    js = admin.jetstream()
    await world.foreign_stream()
    await js.publish(OTHER_SUBJECT, b'{"id": "not-from-this-hive"}')
    target = subjects.event_subject(hive, BOB, "turn.started")
    seen: list[Msg] = []

    async def raw(msg: Msg) -> None:
        seen.append(msg)

    await admin.subscribe(target, cb=raw)
    operator, _ = await world.connect(auth.OPERATOR)
    alice, _ = await world.connect(names.agent_role(ALICE))
    config: dict[str, Any] = {"name": "live-push", "deliver_subject": target, "ack_policy": "none"}
    config |= {"deliver_policy": "all", "inactive_threshold": LONG_NS}

    async with open_live_events(admin, EventFilter(hive=hive)) as events:
        await settle(admin)  # the raw subscription and the live view's
        await operator.request(
            api("CONSUMER", "CREATE", OTHER, "live-push"), _create(OTHER, config), timeout=WAIT
        )
        await wait_until(lambda: len(seen) >= 1, WAIT, what="the push delivery")
        assert subjects.is_js_ack(seen[0].reply)
        await alice.publish(api("INFO"), b"", reply=target)
        await alice.flush()
        await wait_until(lambda: len(seen) >= 2, WAIT, what="the INFO answer")

        msg, event = await asyncio.wait_for(anext(events), WAIT)

    # the redelivery (first) was dropped; the server's answer is shown, as malformed
    assert msg.subject == target
    assert not msg.reply
    assert isinstance(event, MalformedEvent)
    # the hive's stream stored both: the push delivery under its own subject (not one
    # of the hive's), then the server's answer on bob's subject
    stored = [(await js.get_msg(world.stream, seq)).subject for seq in (1, 2)]
    assert stored == [OTHER_SUBJECT, target]
