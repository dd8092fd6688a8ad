"""The whole loop with the real Claude Code CLI: harness → claude → our MCP server → c0re.

Real CLI (pinned, offline), real MCP stdio, real NATS, real c0re; only the
Anthropic API is the fake on loopback, answering from a handler that plays two
agents: alice tells bob something and asks the operator; bob takes it in.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hyperhive import events as ev
from hyperhive.commands import verbs as v
from hyperhive.core.lifecycle.fake import FakeBackend
from hyperhive.harness.claude import CliRunner
from hyperhive.harness.service import Harness
from tests.claude_tools import offline_env
from tests.core.conftest import LiveHive, live_hive
from tests.harness.fake_anthropic import FakeAnthropic, Slow, Text, ToolUse
from tests.harness.test_loop import Events
from tests.helpers import BIN, state_env, wait_until

pytestmark = [pytest.mark.nats, pytest.mark.claude]


def last_text(body: dict[str, Any]) -> str:
    return FakeAnthropic.last_user_text(body)


def agent_of(body: dict[str, Any]) -> str:
    system = FakeAnthropic.system_text(body)
    for name in ("alice", "bob"):
        if f"You are {name}," in system:
            return name
    return "?"


@contextlib.asynccontextmanager
async def harnesses(
    live: LiveHive, claude: Path, fake: FakeAnthropic, tmp: Path, *agents: str
) -> AsyncIterator[list[Harness]]:
    env = offline_env(fake.base_url, tmp / "claude-home")
    mp = pytest.MonkeyPatch()
    for key, value in env.items():
        if key != "CLAUDE_CONFIG_DIR":  # each agent has its own (the harness sets it)
            mp.setenv(key, value)
    mp.setenv("HYPERHIVE_CONFIG", "/dev/null")
    mp.setenv("CLAUDE_CODE_MAX_RETRIES", "0")
    runs = []
    tasks = []
    try:
        for agent in agents:
            h = Harness(live.cfg, await live.as_agent(agent), agent, CliRunner(str(claude)))
            runs.append(h)
            tasks.append(asyncio.create_task(h.run()))
        yield runs
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        mp.undo()


@pytest.fixture
async def hive(tmp_path: Path) -> AsyncIterator[LiveHive]:
    async with live_hive(
        tmp_path / "state", "e2e", agents=("alice", "bob"), backend=FakeBackend()
    ) as h:
        yield h


async def test_a_message_a_send_a_question_and_its_answer_with_the_real_cli(
    hive: LiveHive, claude_bin: Path, fake_api: FakeAnthropic, tmp_path: Path
) -> None:
    def play(body: dict[str, Any]) -> Any:
        agent, text = agent_of(body), last_text(body)
        results = [r.content for r in FakeAnthropic.tool_results(body)]
        if agent == "alice" and "tell bob hello" in text:
            return ToolUse("mcp__hyperhive__send", {"to": "bob", "body": "hello from alice"})
        if (
            agent == "alice"
            and results
            and "sent to bob" in results[-1]
            and "question" not in results[-1]
        ):
            return ToolUse(
                "mcp__hyperhive__ask_operator", {"question": "ship it?", "ttl_seconds": 600}
            )
        if agent == "alice" and results and "question" in results[-1].lower():
            return Text("asked the operator")
        if agent == "bob" and "hello from alice" in text:
            return Text("bob got it")
        return Text(f"{agent} is ready")

    fake_api.handler = play
    async with (
        Events(hive) as events,
        harnesses(hive, claude_bin, fake_api, tmp_path, "alice", "bob"),
    ):
        await wait_until(
            lambda: (
                len(events.of(ev.TurnFinished, "alice")) >= 1
                and len(events.of(ev.TurnFinished, "bob")) >= 1
            ),
            timeout=60,
            what=lambda: (
                f"both agents' first (kick) turns (saw {[e.kind for e in events.seen][-30:]})"
            ),
        )
        await hive.op(v.Send(to="alice", body="please tell bob hello"))

        async def asked() -> list[dict[str, Any]]:
            return list((await hive.op(v.ListQuestions()))["questions"])

        (question,) = await wait_until(asked, timeout=60, what="alice's question")
        assert (question["agent"], question["question"]) == ("alice", "ship it?")
        await wait_until(
            lambda: any(
                f.result_excerpt == "bob got it" for f in events.of(ev.TurnFinished, "bob")
            ),
            timeout=60,
            what="bob's turn on alice's message",
        )
        await hive.op(v.Answer(question_id=question["question_id"], answer="yes, ship it"))
        await wait_until(
            lambda: any(
                agent_of(r.json) == "alice" and "yes, ship it" in last_text(r.json)
                for r in fake_api.main_requests()
            ),
            timeout=60,
            what="alice's next turn to get the answer in its wake prompt",
        )
        await wait_until(
            lambda: len(events.of(ev.TurnFinished, "alice")) >= 3,
            timeout=60,
            what="alice's answered turn",
        )

    bob_prompts = [last_text(r.json) for r in fake_api.main_requests() if agent_of(r.json) == "bob"]
    assert any("Message from alice:" in p and "hello from alice" in p for p in bob_prompts)
    tools = [(s.step, s.tool) for s in events.of(ev.TurnStep, "alice")]
    assert ("tool_use", "mcp__hyperhive__send") in tools
    assert ("tool_use", "mcp__hyperhive__ask_operator") in tools
    assert any(s.step == "tool_result" for s in events.of(ev.TurnStep, "alice"))
    alice_turn = events.of(ev.TurnFinished, "alice")[1]
    assert alice_turn.usage.input_tokens > 0
    assert alice_turn.cost_usd > 0
    tail = await asyncio.to_thread(
        subprocess.run,
        [
            str(BIN / "hive-events"),
            "tail",
            "-n",
            "500",
            "--agent",
            "alice",
            "--hive",
            hive.cfg.hive,
        ],
        capture_output=True,
        text=True,
        env=state_env(hive.state_dir),
        timeout=60,
    )
    assert tail.returncode == 0, tail.stderr
    for needle in (
        "turn.started",
        "turn.step",
        "send → bob: hello from alice",
        "ask_operator: ship it?",
        "question.asked",
        "question.answered",
        "turn.finished",
    ):
        assert needle in tail.stdout, needle


async def test_a_model_change_lands_on_the_next_turn_and_cancel_ends_a_slow_one(
    hive: LiveHive, claude_bin: Path, fake_api: FakeAnthropic, tmp_path: Path
) -> None:
    slow = asyncio.Event()

    def play(body: dict[str, Any]) -> Any:
        if "think slowly" in last_text(body):
            slow.set()
            return Slow(30, Text("too late"))
        return Text("ok")

    fake_api.handler = play
    async with Events(hive) as events, harnesses(hive, claude_bin, fake_api, tmp_path, "alice"):
        await wait_until(lambda: events.of(ev.TurnFinished), timeout=60, what="the kick turn")
        await hive.op(v.SetModel(name="alice", model="claude-made-up-9"))
        await hive.op(v.Send(to="alice", body="think slowly"))
        await wait_until(slow.is_set, timeout=30, what="the slow answer to begin")
        await hive.op(v.CancelTurn(name="alice"))
        # SIGINT ends it: within the 5 s after which the harness would SIGKILL
        await wait_until(lambda: events.of(ev.TurnCancelled), timeout=5, what="turn.cancelled")
        await hive.op(v.Send(to="alice", body="and now quickly"))
        await wait_until(
            lambda: len(events.of(ev.TurnFinished)) >= 2, timeout=60, what="the next turn"
        )
    models = [r.model for r in fake_api.main_requests()]
    assert models[0] != "claude-made-up-9"  # the kick turn, before the change
    assert models[-1] == "claude-made-up-9"
