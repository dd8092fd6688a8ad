"""`hyperhive mcp` for real: the server as a subprocess, the MCP SDK's stdio client, a live c0re.

The hive runs on its own embedded nats-server with the fake backend (agents run
nowhere, but c0re makes their credentials and inboxes as for real ones); the
server under test is the installed `hyperhive mcp --agent NAME`, exactly as
Claude Code starts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from hyperhive.bus import subjects
from hyperhive.bus.inbox import recv
from hyperhive.commands import verbs as v
from hyperhive.core.lifecycle.fake import FakeBackend
from hyperhive.errors import NotConnected
from hyperhive.harness.mcp import tools as t
from tests.core.conftest import LiveHive, live_hive

pytestmark = pytest.mark.nats

HYPERHIVE = Path(sys.executable).with_name("hyperhive")
AGENT_TOOLS = {"send", "recv", "ask_operator", "set_status"}
MANAGER_TOOLS = AGENT_TOOLS | {"request_spawn", "start", "stop", "restart", "request_apply_commit"}
MSG_ID = re.compile(r"msg_id (\S+?)\)")


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[LiveHive]:
    async with live_hive(
        tmp_path / "state", "mcp-test", agents=("alice", "bob"), backend=FakeBackend()
    ) as h:
        yield h


def server_env(state: Path | str, hive: str, **extra: str) -> dict[str, str]:
    return {
        "HYPERHIVE_STATE_DIR": str(state),
        "HYPERHIVE_HIVE": hive,
        "HYPERHIVE_CONFIG": os.devnull,
        **extra,
    }


@contextlib.asynccontextmanager
async def session(env: dict[str, str], agent: str, errlog: Path) -> AsyncIterator[ClientSession]:
    """An initialized MCP session with `hyperhive mcp --agent <agent>`; its stderr to `errlog`."""
    params = StdioServerParameters(command=str(HYPERHIVE), args=["mcp", "--agent", agent], env=env)
    with errlog.open("a") as err:
        async with (
            stdio_client(params, errlog=err) as (read, write),
            ClientSession(read, write) as s,
        ):
            await s.initialize()
            yield s


@contextlib.asynccontextmanager
async def agent_session(live: LiveHive, agent: str, tmp: Path) -> AsyncIterator[ClientSession]:
    errlog = tmp / f"mcp-{agent}.stderr"
    async with session(server_env(live.state_dir, live.cfg.hive), agent, errlog) as s:
        yield s
    assert_clean(errlog)


def assert_clean(errlog: Path) -> None:
    text = errlog.read_text() if errlog.exists() else ""
    assert "Traceback" not in text, text
    assert " ERROR " not in text, text


def text_of(result: types.CallToolResult) -> str:
    assert len(result.content) == 1
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


async def ok(s: ClientSession, tool: str, **arguments: Any) -> str:
    result = await s.call_tool(tool, arguments)
    assert not result.is_error, text_of(result)
    return text_of(result)


async def refused(s: ClientSession, tool: str, arguments: dict[str, Any] | None = None) -> str:
    result = await s.call_tool(tool, arguments)
    assert result.is_error, f"{tool}({arguments!r:.200}) was not refused: {text_of(result)}"
    text = text_of(result)
    assert "\n" not in text
    assert "Traceback" not in text
    assert len(text) <= t.MAX_ERROR_CHARS
    return text


async def drain(s: ClientSession) -> None:
    """Take what is already in the inbox (the start kick), so the next recv sees what's new."""
    for _ in range(20):
        if (await ok(s, "recv", wait_seconds=0)).startswith("no message"):
            return
    raise AssertionError("the inbox never emptied")


async def recv_until(s: ClientSession, needle: str, timeout: float = 30.0) -> str:
    """recv until a message containing `needle` comes (other messages are skipped)."""
    async with asyncio.timeout(timeout):
        while True:
            got = await ok(s, "recv", wait_seconds=10)
            if needle in got:
                return got


# ---------------------------------------------------------------- listing


async def test_an_agent_sees_its_four_tools_and_the_manager_nine(
    live: LiveHive, tmp_path: Path
) -> None:
    async with (
        agent_session(live, "alice", tmp_path) as alice,
        agent_session(live, "manager", tmp_path) as manager,
    ):
        init = alice.initialize_result
        assert init is not None
        assert init.server_info.name == "hyperhive"
        assert "alice" in (init.instructions or "")
        listed = (await alice.list_tools()).tools
        assert {tool.name for tool in listed} == AGENT_TOOLS
        assert {tool.name for tool in (await manager.list_tools()).tools} == MANAGER_TOOLS
        for tool in listed:
            assert tool.description
            assert len(tool.description) > 80
            assert tool.input_schema["type"] == "object"
            assert tool.input_schema["additionalProperties"] is False
        send = next(tool for tool in listed if tool.name == "send")
        assert send.input_schema["required"] == ["to", "body"]
        assert send.input_schema["properties"]["body"]["maxLength"] == 65536


# ---------------------------------------------------------------- every agent's tools


async def test_send_lands_in_the_recipients_inbox(live: LiveHive, tmp_path: Path) -> None:
    async with (
        agent_session(live, "alice", tmp_path) as alice,
        agent_session(live, "bob", tmp_path) as bob,
    ):
        await drain(bob)
        sent = await ok(alice, "send", to="bob", body="hello bob\nsecond line")
        assert sent.startswith("sent to bob (msg_id ")
        match = MSG_ID.search(sent)
        assert match is not None
        got = await recv_until(bob, "hello bob")
        assert got.startswith(f"Message from alice, msg_id {match.group(1)}, ")
        assert got.endswith("\n\nhello bob\nsecond line")

    # And through the library, as bob himself would with his own credentials.
    async with agent_session(live, "alice", tmp_path) as alice:
        await ok(alice, "send", to="bob", body="via the library")
    nc = await live.as_agent("bob")
    async with asyncio.timeout(30):
        while True:
            received = await recv(nc, live.cfg.hive, "bob", wait=10)
            assert received is not None
            assert received.message is not None
            if received.message.body == "via the library":
                assert received.message.from_ == "alice"
                break


async def test_ask_operator_then_the_answer_comes_out_of_recv(
    live: LiveHive, tmp_path: Path
) -> None:
    async with agent_session(live, "alice", tmp_path) as alice:
        await drain(alice)
        asked = await ok(
            alice, "ask_operator", question="ship it?", options=["yes", "no"], ttl_seconds=600
        )
        match = re.match(r"question (\S+) asked", asked)
        assert match is not None, asked
        qid = match.group(1)
        assert "inbox" in asked
        questions = (await live.op(v.ListQuestions()))["questions"]
        mine = next(q for q in questions if q["question_id"] == qid)
        assert (mine["agent"], mine["question"], mine["options"]) == (
            "alice",
            "ship it?",
            ["yes", "no"],
        )
        await live.op(v.Answer(question_id=qid, answer="yes, ship it"))
        got = await recv_until(alice, qid)
        assert got.startswith(f"System message (operator_answered about {qid}), msg_id ")
        assert "A: yes, ship it" in got


async def test_recv_returns_at_once_when_empty_and_without_waiting_when_zero(
    live: LiveHive, tmp_path: Path
) -> None:
    async with agent_session(live, "alice", tmp_path) as alice:
        await drain(alice)
        loop = asyncio.get_running_loop()
        for args in ({"wait_seconds": 0}, {"wait_seconds": -5}, {"wait_seconds": 0.4}):
            started = loop.time()
            got = await ok(alice, "recv", **args)
            assert got == "no message within 0 s"
            assert loop.time() - started < 2.0, args
        started = loop.time()
        assert await ok(alice, "recv", wait_seconds=1) == "no message within 1 s"
        assert 0.9 <= loop.time() - started < 4.0


async def test_a_cancelled_recv_loses_nothing_and_the_server_goes_on(
    live: LiveHive, tmp_path: Path
) -> None:
    async with agent_session(live, "alice", tmp_path) as alice:
        await drain(alice)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with anyio.move_on_after(1.0) as scope:  # the client cancels the call (Esc in Claude)
            await alice.call_tool("recv", {"wait_seconds": 60})
        assert scope.cancelled_caught
        assert loop.time() - started < 5.0
        assert await ok(alice, "recv", wait_seconds=0) == "no message within 0 s"
        await live.agent_says("bob", v.Send(to="alice", body="after the cancel"))
        started = loop.time()
        got = await ok(alice, "recv", wait_seconds=20)
        assert got.endswith("\n\nafter the cancel")
        assert loop.time() - started < 10.0


async def test_a_malformed_message_is_reported_not_raised(live: LiveHive, tmp_path: Path) -> None:
    async with agent_session(live, "alice", tmp_path) as alice:
        await drain(alice)
        inbox = subjects.inbox_subject(live.cfg.hive, "alice")
        await live.admin.jetstream().publish(inbox, b"{not an event" + b"x" * 100_000)
        await live.agent_says("bob", v.Send(to="alice", body="a good one"))
        got = await ok(alice, "recv", wait_seconds=10)
        assert got.startswith("A malformed message was in your inbox; it was removed")
        assert len(got) < 2 * t.MAX_RAW_EXCERPT + 500
        assert (await ok(alice, "recv", wait_seconds=10)).endswith("\n\na good one")


async def test_set_status_shows_on_the_agents_row(live: LiveHive, tmp_path: Path) -> None:
    async with agent_session(live, "alice", tmp_path) as alice:
        assert await ok(alice, "set_status", text="reading the logs") == (
            "status set: reading the logs"
        )
    rows = (await live.op(v.ListAgents()))["agents"]
    assert next(r for r in rows if r["name"] == "alice")["status_text"] == "reading the logs"


# ---------------------------------------------------------------- refusals, hostile arguments


async def test_refusals_and_hostile_arguments_are_tool_errors_with_the_reason(
    live: LiveHive, tmp_path: Path
) -> None:
    async with agent_session(live, "alice", tmp_path) as alice:
        assert "invalid agent name '..'" in await refused(alice, "send", {"to": "..", "body": "x"})
        assert "invalid agent name" in await refused(alice, "send", {"to": "a/b", "body": "x"})
        assert "unknown recipient 'nobody'" in await refused(
            alice, "send", {"to": "nobody", "body": "x"}
        )
        huge = await refused(alice, "send", {"to": "bob", "body": "x" * (2 * 1024 * 1024)})
        assert huge == "send: Expected `str` of length <= 65536 - at `$.body`"
        for ttl in (-1, 0, 10**12):
            reason = await refused(alice, "ask_operator", {"question": "q", "ttl_seconds": ttl})
            assert reason.startswith("ask_operator: Expected `int` ")
            assert reason.endswith("- at `$.ttl_seconds`")
        wrong_types: list[tuple[str, dict[str, Any]]] = [
            ("send", {"to": 5, "body": "x"}),
            ("send", {"to": ["bob"], "body": "x"}),
            ("send", {"to": "bob"}),
            ("send", {"to": "bob", "body": "x", "cc": "carol"}),
            ("ask_operator", {"question": "q", "options": "yes"}),
            ("ask_operator", {"question": "q", "multi": "yes"}),
            ("ask_operator", {"question": "q", "ttl_seconds": "3600"}),
            ("ask_operator", {"question": "q", "options": ["o"] * 33}),
            ("ask_operator", {"question": ""}),
            ("set_status", {"text": "x" * 5000}),
            ("set_status", {}),
            ("recv", {"wait_seconds": "soon"}),
            ("recv", {"wait_seconds": True}),
            ("recv", {"until": 3}),
        ]
        for tool, arguments in wrong_types:
            assert (await refused(alice, tool, arguments)).startswith(f"{tool}: ")
        assert "unknown tool 'rm_rf'" in await refused(alice, "rm_rf", {"path": "/"})
        assert "unknown tool" in await refused(alice, "x" * 10_000)
        # The manager's tools are not listed for alice; called anyway, c0re refuses them.
        for tool, arguments in [
            ("start", {"name": "bob"}),
            ("stop", {"name": "bob"}),
            ("restart", {"name": "bob"}),
            ("request_spawn", {"name": "carol"}),
            ("request_apply_commit", {"agent": "bob", "commit_ref": "HEAD"}),
        ]:
            reason = await refused(alice, tool, arguments)
            assert reason == f"{tool} is the manager's verb; alice may not use it"
        # Still serving, and nothing of the above reached anyone.
        await ok(alice, "send", to="alice", body="still here")
        assert "still here" in await recv_until(alice, "still here")
    assert (await live.op(v.ListQuestions(all=True)))["questions"] == []
    assert (await live.op(v.ListApprovals(all=True)))["approvals"] == []


async def test_the_managers_tools(live: LiveHive, tmp_path: Path) -> None:
    async with agent_session(live, "manager", tmp_path) as manager:
        for action in ("start", "stop", "restart"):
            reason = await refused(manager, action, {"name": "manager"})
            assert reason == f"the manager may not {action} itself"
        assert await ok(manager, "start", name="bob") == "bob is already running: nothing to start"
        spawn = await ok(manager, "request_spawn", name="carol")
        match = re.match(r"spawn requested: approval (\S+)\.", spawn)
        assert match is not None, spawn
        approvals = (await live.op(v.ListApprovals()))["approvals"]
        assert [(a["approval_id"], a["approval_kind"]) for a in approvals] == [
            (match.group(1), "spawn")
        ]
        assert "already waiting for approval" in await refused(
            manager, "request_spawn", {"name": "carol"}
        )
        assert "invalid agent name" in await refused(manager, "request_spawn", {"name": "../x"})
        assert "commit_ref" in await refused(
            manager, "request_apply_commit", {"agent": "bob", "commit_ref": "a b;rm"}
        )


# ---------------------------------------------------------------- the wire itself


def rpc(msg_id: int, method: str, params: dict[str, Any] | None = None) -> bytes:
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
    if params is not None:
        body["params"] = params
    return json.dumps(body).encode() + b"\n"


INITIALIZE = {
    "protocolVersion": "2025-06-18",
    "capabilities": {},
    "clientInfo": {"name": "test", "version": "0"},
}


async def raw_exchange(env: dict[str, str], lines: list[bytes], want: set[int]) -> dict[int, Any]:
    """Write `lines` to a server's stdin, read stdout until every id in `want` is answered.

    Every stdout line must be a JSON-RPC message (nothing else may reach stdout);
    then stdin is closed and the server must exit 0 on its own, stderr clean.
    """
    proc = await asyncio.create_subprocess_exec(
        str(HYPERHIVE),
        "mcp",
        "--agent",
        "alice",
        env={**os.environ, **env},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    assert proc.stderr is not None
    answers: dict[int, Any] = {}
    try:
        proc.stdin.write(b"".join(lines))
        await proc.stdin.drain()
        async with asyncio.timeout(30):
            while not want <= set(answers):
                line = await proc.stdout.readline()
                assert line, f"stdout closed; got {answers}"
                msg = json.loads(line)
                assert msg["jsonrpc"] == "2.0", line
                if "id" in msg:
                    answers[msg["id"]] = msg
            proc.stdin.close()
            rest = await proc.stdout.read()
            assert await proc.wait() == 0
        for line in rest.splitlines():
            assert json.loads(line)["jsonrpc"] == "2.0"
        stderr = (await proc.stderr.read()).decode()
        assert "Traceback" not in stderr, stderr
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return answers


async def test_stdout_carries_only_protocol_and_shapeless_calls_are_tool_errors(
    live: LiveHive,
) -> None:
    lines = [
        rpc(1, "initialize", INITIALIZE),
        b'{"jsonrpc":"2.0","method":"notifications/initialized"}\n',
        b"this is not json {\n",
        rpc(2, "tools/list"),
        rpc(3, "tools/call", {"name": "send", "arguments": '{"to": "bob", "body": '}),
        rpc(4, "tools/call", {"name": "send", "arguments": ["bob", "hi"]}),
        rpc(5, "tools/call", {"name": 7, "arguments": {}}),
        rpc(6, "tools/call", {"name": "send", "arguments": {"to": "bob", "body": "raw hello"}}),
        rpc(7, "tools/call", {"name": "recv"}),  # no arguments at all: the defaults
    ]
    env = server_env(live.state_dir, live.cfg.hive)
    answers = await raw_exchange(env, lines[:-1], {1, 2, 3, 4, 5, 6})
    assert answers[1]["result"]["serverInfo"]["name"] == "hyperhive"
    assert {tool["name"] for tool in answers[2]["result"]["tools"]} == AGENT_TOOLS
    for n, reason in [
        (3, "send: the arguments must be a JSON object"),
        (4, "send: the arguments must be a JSON object"),
        (5, "the tool name must be a string"),
    ]:
        assert answers[n]["result"] == {
            "content": [{"type": "text", "text": reason}],
            "isError": True,
        }
    assert answers[6]["result"]["content"][0]["text"].startswith("sent to bob")
    answers = await raw_exchange(env, [*lines[:2], lines[-1]], {7})
    assert answers[7]["result"]["content"][0]["text"].startswith("System message (kick")


async def test_stdin_closed_at_once_ends_the_server_quietly(tmp_path: Path) -> None:
    """No hive at all: nothing on stdout, exit 0 as soon as stdin is closed."""
    proc = await asyncio.create_subprocess_exec(
        str(HYPERHIVE),
        "mcp",
        "--agent",
        "alice",
        env={**os.environ, **server_env(tmp_path / "state", "nohive")},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(20):
        out, err = await proc.communicate()
    assert proc.returncode == 0
    assert out == b""
    assert b"Traceback" not in err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_without_nats_it_answers_at_once_and_tools_say_not_connected(
    tmp_path: Path,
) -> None:
    env = server_env(
        tmp_path / "state", "nohive", HYPERHIVE_NATS_URL=f"nats://127.0.0.1:{free_port()}"
    )
    errlog = tmp_path / "stderr"
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with session(env, "alice", errlog) as alice:
        assert {tool.name for tool in (await alice.list_tools()).tools} == AGENT_TOOLS
        assert loop.time() - started < 10.0  # the interpreter's start, not the bus
        started = loop.time()
        reason = await refused(alice, "send", {"to": "bob", "body": "x"})
        assert reason.startswith("not connected to the hive's NATS as agent-alice after 5s")
        assert await refused(alice, "recv", {"wait_seconds": 0}) == (
            reason.replace("after 5s", "after 4s")
        )
        assert loop.time() - started < 2 * t.CONNECT_WAIT + 3
        # Arguments are still checked first, bus or not.
        assert (await refused(alice, "send", {"to": "bob"})).startswith("send: Object missing")
    assert "Traceback" not in errlog.read_text()


# ---------------------------------------------------------------- the tools without stdio


async def test_tools_never_raise_whatever_the_client_does() -> None:
    async def broken(timeout: float) -> Any:
        raise RuntimeError("boom")

    async def down(timeout: float) -> Any:
        raise NotConnected("no bus here")

    tools = t.Tools(agent="alice", hive="h", client=broken)
    out = await tools.call("send", {"to": "bob", "body": "x"})
    assert out == t.Outcome("internal error in hyperhive mcp running 'send' (logged)", True)
    tools = t.Tools(agent="alice", hive="h", client=down)
    assert await tools.call("recv", None) == t.Outcome("no bus here", True)
    assert await tools.call(None, None) == t.Outcome(
        "unknown tool 'None': the tools are send, recv, ask_operator, set_status", True
    )
    assert (await tools.call("send", "to=bob")).text == "send: the arguments must be a JSON object"
    assert [x.name for x in t.Tools("manager", "h", down).listed()] == [x.name for x in t.TOOLS]
