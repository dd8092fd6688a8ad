"""`hivectl` as an operator uses it: real processes against a real c0re, JSON that holds still."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hyperhive.commands import verbs as v
from hyperhive.core.lifecycle.fake import FakeBackend
from tests.core.conftest import LiveHive, live_hive
from tests.helpers import BIN, state_env

pytestmark = pytest.mark.nats

AGENT_FIELDS = {"name", "state", "turn_state", "paused", "backend", "model", "port", "status_text"}
QUESTION_FIELDS = {"question_id", "agent", "question", "options", "multi", "expires_at", "status"}
APPROVAL_FIELDS = {"approval_id", "agent", "approval_kind", "description", "status", "note"}


@pytest.fixture
async def hive(tmp_path: Path) -> AsyncIterator[LiveHive]:
    async with live_hive(tmp_path / "state", "ctl", agents=("alice",), backend=FakeBackend()) as h:
        yield h


async def hivectl(live: LiveHive, *args: str) -> subprocess.CompletedProcess[str]:
    env = state_env(live.state_dir)
    env["HYPERHIVE_HIVE"] = live.cfg.hive
    return await asyncio.to_thread(
        subprocess.run,
        [str(BIN / "hivectl"), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


async def ok_json(live: LiveHive, *args: str) -> Any:
    done = await hivectl(live, *args, "-o", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def test_agents_questions_and_approvals_print_their_documented_fields(
    hive: LiveHive,
) -> None:
    agents = await ok_json(hive, "agents")
    assert isinstance(agents, list)
    assert {a["name"] for a in agents} == {"manager", "alice"}
    assert all(set(a) >= AGENT_FIELDS for a in agents)
    await hive.agent_says("alice", v.AskOperator(question="ok?", options=["y", "n"], multi=True))
    (q,) = await ok_json(hive, "questions")
    assert set(q) >= QUESTION_FIELDS
    assert (q["agent"], q["options"], q["multi"], q["status"]) == (
        "alice",
        ["y", "n"],
        True,
        "open",
    )
    await hive.agent_says("manager", v.RequestSpawn(name="carol"))
    (a,) = await ok_json(hive, "approvals")
    assert set(a) >= APPROVAL_FIELDS
    assert (a["approval_kind"], a["status"]) == ("spawn", "pending")

    answered = await ok_json(hive, "answer", q["question_id"], "y, n")
    assert answered["status"] == "answered"
    approved = await ok_json(hive, "approve", a["approval_id"], "--note", "go")
    assert approved["status"] == "approved"
    assert "carol" in {x["name"] for x in await ok_json(hive, "agents")}


async def test_a_refusal_is_exit_1_with_c0res_reason_on_one_line(hive: LiveHive) -> None:
    for args, why in (
        (["approve", "nope"], "unknown approval"),
        (["destroy", "manager"], "may not be destroyed"),
        (["spawn", ".."], "invalid agent name"),
        (["send", "ghost", "hi"], "unknown recipient"),
        (["model", "alice", "bad model name!"], "model"),
    ):
        done = await hivectl(hive, *args)
        assert done.returncode == 1, (args, done.stdout)
        (line,) = done.stderr.splitlines()
        assert line.startswith("error: ")
        assert why in line, (args, line)


async def test_text_output_and_every_lifecycle_verb(hive: LiveHive) -> None:
    for args in (
        ["pause", "alice"],
        ["resume", "alice"],
        ["stop", "alice"],
        ["start", "alice"],
        ["restart", "alice"],
        ["kick", "alice"],
        ["ports"],
        ["cancel-turn", "alice"],
    ):
        done = await hivectl(hive, *args)
        assert done.returncode == 0, (args, done.stderr)
    text = (await hivectl(hive, "agents")).stdout
    assert text.splitlines()[0].split() == [
        "NAME",
        "STATE",
        "TURN",
        "MODEL",
        "PORT",
        "PAUSED",
        "STATUS",
    ]
    assert any(line.startswith("alice ") for line in text.splitlines())


async def test_hivectl_without_a_c0re_says_so_in_one_line(tmp_path: Path) -> None:
    env = state_env(tmp_path / "nowhere")
    done = await asyncio.to_thread(
        subprocess.run,
        [str(BIN / "hivectl"), "agents"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert "hyperhive up" in line


async def test_logs_prints_an_agents_last_lines_and_refuses_a_bad_count(hive: LiveHive) -> None:
    backend = hive.core.backend
    assert isinstance(backend, FakeBackend)
    backend.logs["alice"] = [f"line {i}" for i in range(10)] + ["\x1b[31mred\x1b[0m"]
    done = await hivectl(hive, "logs", "alice", "-n", "3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["line 8", "line 9", "\\x1b[31mred\\x1b[0m"]  # escapes shown
    as_json = await ok_json(hive, "logs", "alice", "-n", "2")
    assert as_json == {"name": "alice", "lines": ["line 9", "\x1b[31mred\x1b[0m"]}
    refused = await hivectl(hive, "logs", "alice", "-n", "100000")
    assert refused.returncode == 2
    unknown = await hivectl(hive, "logs", "nobody")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "error: unknown agent 'nobody'"
