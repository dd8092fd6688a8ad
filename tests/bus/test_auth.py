"""NATS authorization: nobody anonymous, operators never write events, agents speak as themselves."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from pathlib import Path

import nats
import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from hyperhive import names
from hyperhive.bus import auth, subjects
from hyperhive.bus.connect import Endpoint, connect, resolve_endpoint
from hyperhive.bus.consume import StartAt, read_ordered
from hyperhive.bus.publish import publish_event
from hyperhive.bus.records import subject_for
from hyperhive.bus.server import EmbeddedServer
from hyperhive.bus.settle import settle
from hyperhive.bus.stream import ensure_stream
from hyperhive.config import HiveConfig
from hyperhive.errors import NotConnected
from hyperhive.events import decode_event, encode_event
from tests.helpers import (
    connect_as,
    next_permission_error,
    publish_many,
    stream_count,
    turn_events,
    turn_started,
    wait_until,
)

pytestmark = pytest.mark.nats


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_credential_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    state = tmp_path / "state"
    conf = auth.write_auth_conf(state, "h1", ["alice"])

    files = sorted(p for p in auth.credentials_dir(state).rglob("*") if p.is_file())
    names_ = [str(f.relative_to(auth.credentials_dir(state))) for f in files]
    assert names_ == ["admin.json", "h1/agent-alice.json", "h1/operator.json", "operator.json"]
    for path in [*files, conf]:
        assert _mode(path) == 0o600, f"{path.name} is mode {oct(_mode(path))}"
    assert _mode(auth.credentials_dir(state)) == 0o700
    assert _mode(auth.credentials_dir(state) / "h1") == 0o700


def test_regenerating_the_auth_conf_keeps_existing_passwords(tmp_path: Path) -> None:
    state = tmp_path / "state"
    auth.write_auth_conf(state, "h1", ["alice"])
    before = auth.read_credentials(auth.credentials_path(state, "agent-alice", "h1"))

    auth.write_auth_conf(state, "h1", ["bob"])

    assert auth.read_credentials(auth.credentials_path(state, "agent-alice", "h1")) == before
    conf = (state / "nats" / "auth.conf").read_text()
    assert before.password in conf
    assert '"user": "agent-bob@h1"' in conf


def test_the_session_servers_credentials_are_private(server: EmbeddedServer) -> None:
    for role in auth.ROLES:
        assert _mode(auth.credentials_path(server.state_dir, role)) == 0o600


async def _refused_login(url: str, user: str | None = None, password: str | None = None) -> str:
    """Try to log in with plain nats-py; return the server's refusal."""
    client = Client()
    try:
        with pytest.raises(nats.errors.Error) as refused:
            await client.connect(
                url, allow_reconnect=False, connect_timeout=2, user=user, password=password
            )
    finally:
        await client.close()  # nats-py keeps a refused attempt's socket otherwise
    return str(refused.value)


async def test_the_server_refuses_an_anonymous_connection(server: EmbeddedServer) -> None:
    assert "authorization" in (await _refused_login(server.url)).lower()


async def test_the_server_refuses_a_wrong_password(server: EmbeddedServer) -> None:
    refusal = await _refused_login(server.url, user="admin", password="not-the-password")
    assert "authorization" in refusal.lower()


async def _within(seconds: float, coro: Awaitable[Client], what: str) -> Client:
    try:
        return await asyncio.wait_for(coro, seconds)
    except TimeoutError:
        raise AssertionError(f"{what}: still retrying after {seconds:.0f}s") from None


async def test_connect_reports_a_refused_anonymous_connection_as_not_connected(
    server: EmbeddedServer,
) -> None:
    endpoint = Endpoint(servers=(server.url,), credentials=None, role=auth.ADMIN)
    with pytest.raises(NotConnected, match=r"(?i)authorization"):
        await _within(
            5, connect(endpoint, "anonymous"), "connect() never gave up on a refused login"
        )


@pytest.fixture
async def operator_nc(
    server: EmbeddedServer, cfg: HiveConfig
) -> AsyncIterator[tuple[Client, asyncio.Queue[Exception]]]:
    errors: asyncio.Queue[Exception] = asyncio.Queue()
    client = await connect_as(server.url, Path(cfg.state_dir), auth.OPERATOR, errors)
    yield client, errors
    await client.close()


async def test_operator_cannot_publish_an_event(
    nc: Client, hive: str, operator_nc: tuple[Client, asyncio.Queue[Exception]]
) -> None:
    op, errors = operator_nc
    event = turn_started(hive)
    subject = subject_for(event)

    await op.publish(subject, encode_event(event), headers={"Nats-Msg-Id": event.id})
    refusal = await next_permission_error(errors, subject)

    assert "publish" in refusal.lower()
    # The stream got nothing: the next event an admin writes is the first one.
    [ack] = await publish_many(nc.jetstream(), turn_events(hive, 1))
    assert ack.seq == 1
    assert await stream_count(nc.jetstream(), hive) == 1


async def test_operator_jetstream_publish_of_an_event_is_never_stored(
    nc: Client, hive: str, operator_nc: tuple[Client, asyncio.Queue[Exception]]
) -> None:
    op, errors = operator_nc
    event = turn_started(hive)

    with pytest.raises((nats.errors.Error, asyncio.TimeoutError)):
        await publish_event(op.jetstream(), event, timeout=0.5)

    await next_permission_error(errors, subject_for(event))
    assert await stream_count(nc.jetstream(), hive) == 0


async def test_operator_can_read_events(
    nc: Client, hive: str, operator_nc: tuple[Client, asyncio.Queue[Exception]]
) -> None:
    op, _ = operator_nc
    published = turn_events(hive, 5)
    await publish_many(nc.jetstream(), published)

    read = []
    async for msg in read_ordered(
        op, subjects.stream_name(hive), subjects.stream_subjects(hive), StartAt(), False
    ):
        read.append(decode_event(msg.data).id)

    assert read == [e.id for e in published]


async def test_operator_can_send_an_operator_command(
    nc: Client, hive: str, operator_nc: tuple[Client, asyncio.Queue[Exception]]
) -> None:
    op, _ = operator_nc
    subject = subjects.command_subject(hive, names.OPERATOR, "spawn")

    async def answer(msg: Msg) -> None:
        await msg.respond(b"ok")

    await nc.subscribe(subject, cb=answer)
    await settle(nc)

    reply = await op.request(subject, b"{}", timeout=5)
    assert reply.data == b"ok"


# ---------------------------------------------------------------- agents


@dataclass
class AgentHive:
    server: EmbeddedServer
    hive: str
    admin: Client
    alice: Client
    alice_errors: asyncio.Queue[Exception]


@pytest.fixture
async def agent_hive(tmp_path: Path) -> AsyncIterator[AgentHive]:
    """A separate server whose auth knows agent alice (the session server's auth is fixed)."""
    hive = "agents"
    state = tmp_path / "state"
    auth.write_auth_conf(state, hive, ["alice"])
    server = EmbeddedServer(state, hive)
    server.start()
    errors: asyncio.Queue[Exception] = asyncio.Queue()
    admin = alice = None
    try:
        admin = await connect(
            resolve_endpoint(
                HiveConfig(hive=hive, nats_url=server.url, state_dir=str(state)), auth.ADMIN
            ),
            "admin",
        )
        await ensure_stream(admin.jetstream(), hive, HiveConfig().stream)
        alice = await connect_as(server.url, state, names.agent_role("alice"), errors, hive)
        yield AgentHive(server, hive, admin, alice, errors)
    finally:
        for client in (alice, admin):
            if client is not None:
                await client.close()
        server.stop()


async def test_agent_can_publish_its_own_turn_events(agent_hive: AgentHive) -> None:
    event = turn_started(agent_hive.hive, "alice")

    published = await publish_event(agent_hive.alice.jetstream(), event)

    assert published.seq == 1
    msg = await agent_hive.admin.jetstream().get_msg(subjects.stream_name(agent_hive.hive), 1)
    assert msg.data is not None
    assert decode_event(msg.data).id == event.id


async def test_agent_cannot_publish_another_agents_event(agent_hive: AgentHive) -> None:
    event = turn_started(agent_hive.hive, "bob")

    with pytest.raises((nats.errors.Error, asyncio.TimeoutError)):
        await publish_event(agent_hive.alice.jetstream(), event, timeout=0.5)

    await next_permission_error(agent_hive.alice_errors, subject_for(event))
    assert await stream_count(agent_hive.admin.jetstream(), agent_hive.hive) == 0


async def test_agent_cannot_publish_a_non_turn_event_of_its_own(agent_hive: AgentHive) -> None:
    subject = subjects.event_subject(agent_hive.hive, "alice", "approval.approved")

    await agent_hive.alice.publish(subject, b"{}")

    await next_permission_error(agent_hive.alice_errors, subject)
    assert await stream_count(agent_hive.admin.jetstream(), agent_hive.hive) == 0


async def _answered(admin: Client, subject_pattern: str) -> list[str]:
    got: list[str] = []

    async def answer(msg: Msg) -> None:
        got.append(msg.subject)
        await msg.respond(b"ok")

    await admin.subscribe(subject_pattern, cb=answer)
    await settle(admin)
    return got


async def test_agent_can_send_a_command_as_itself(agent_hive: AgentHive) -> None:
    subject = subjects.command_subject(agent_hive.hive, "alice", "send")
    await _answered(agent_hive.admin, f"hive.{agent_hive.hive}.cmd.c0re.>")

    reply = await agent_hive.alice.request(subject, b"{}", timeout=5)

    assert reply.data == b"ok"


@pytest.mark.parametrize("caller", [names.OPERATOR, "bob"])
async def test_agent_cannot_send_a_command_as_someone_else(
    agent_hive: AgentHive, caller: str
) -> None:
    subject = subjects.command_subject(agent_hive.hive, caller, "spawn")
    answered = await _answered(agent_hive.admin, f"hive.{agent_hive.hive}.cmd.c0re.>")

    with pytest.raises(nats.errors.Error):
        await agent_hive.alice.request(subject, b"{}", timeout=0.5)

    await next_permission_error(agent_hive.alice_errors, subject)
    # the admin's own round trip proves c0re's subscription is live, and it never saw alice's command
    await agent_hive.admin.request(
        subjects.command_subject(agent_hive.hive, "alice", "ping"), b"", timeout=5
    )
    assert answered == [subjects.command_subject(agent_hive.hive, "alice", "ping")]


async def test_a_waiting_service_gets_in_once_the_server_reloads_its_new_user(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "state"
    server = EmbeddedServer(state, "h1")
    server.start()
    try:
        # bob's credentials exist before the server knows bob (as right after a spawn)
        creds = auth.ensure_credentials(state, names.agent_role("bob"), "h1")
        endpoint = Endpoint(
            servers=(server.url,), credentials=creds, role=names.agent_role("bob"), hive="h1"
        )
        with caplog.at_level("ERROR", logger="hyperhive.bus"):
            task = asyncio.ensure_future(connect(endpoint, "bob", wait=True))
            await wait_until(
                lambda: "refused our credentials" in caplog.text or task.done(),
                what="the first refused attempt",
            )
        assert not task.done(), "a service must keep trying with refused credentials"
        server.reload(agents=("bob",))
        bob = await asyncio.wait_for(task, 20)
        assert bob.is_connected
        await bob.close()
    finally:
        server.stop()
