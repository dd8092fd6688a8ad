"""The harness's loop against a real c0re on real NATS, with claude scripted in-process.

The real CLI is tested in test_claude_e2e.py; here the runner is `ScriptedRunner`
so every turn is instant and its stream-json lines are exactly what the test says.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hyperhive import events as ev
from hyperhive.bus import subjects
from hyperhive.bus.consume import StartAt, read_ordered
from hyperhive.commands import verbs as v
from hyperhive.core.lifecycle.fake import FakeBackend
from hyperhive.harness.claude import CliRunner, ScriptedRunner
from hyperhive.harness.service import Harness
from tests.core.conftest import LiveHive, live_hive
from tests.helpers import wait_until

pytestmark = pytest.mark.nats


def result(text: str = "done", session: str = "s1", **extra: Any) -> dict[str, Any]:
    return {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "result": text,
        "session_id": session,
        "num_turns": 2,
        "duration_ms": 10,
        "total_cost_usd": 0.0123,
        "usage": {
            "input_tokens": 100,
            "output_tokens": 20,
            "cache_read_input_tokens": 5,
            "cache_creation_input_tokens": 7,
        },
        **extra,
    }


def assistant(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"type": "assistant", "message": {"content": list(blocks)}, "session_id": "s1"}


class Events:
    """Every event of the hive, as it lands (an admin reader)."""

    def __init__(self, live: LiveHive) -> None:
        self.live = live
        self.seen: list[ev.AnyEvent] = []
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Events:
        async def follow() -> None:
            stream = subjects.stream_name(self.live.cfg.hive)
            msgs = read_ordered(
                self.live.admin,
                stream,
                subjects.stream_subjects(self.live.cfg.hive),
                StartAt(),
                True,
            )
            async for msg in msgs:
                with contextlib.suppress(Exception):
                    self.seen.append(ev.decode_event(msg.data))

        self.task = asyncio.create_task(follow())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    def of(self, cls: type[ev.Event], agent: str = "alice") -> list[Any]:
        return [e for e in self.seen if isinstance(e, cls) and e.agent == agent]


@contextlib.asynccontextmanager
async def harness_for(live: LiveHive, agent: str, runner: Any) -> AsyncIterator[Harness]:
    nc = await live.as_agent(agent)
    h = Harness(live.cfg, nc, agent, runner)
    task = asyncio.create_task(h.run())
    try:
        yield h
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
async def hive(tmp_path: Path) -> AsyncIterator[LiveHive]:
    async with live_hive(
        tmp_path / "state", "loop", agents=("alice", "bob"), backend=FakeBackend()
    ) as h:
        yield h


async def test_a_message_wakes_the_agent_and_its_turn_is_on_the_record(hive: LiveHive) -> None:
    runner = ScriptedRunner(
        turns=[
            [result()],  # the start kick's turn
            [
                {"type": "system", "subtype": "init", "session_id": "s1"},
                assistant({"type": "text", "text": "Reading the plan."}),
                assistant(
                    {
                        "type": "tool_use",
                        "id": "t1",
                        "name": "Read",
                        "input": {"file_path": "/state/plan.md"},
                    }
                ),
                {
                    "type": "user",
                    "message": {
                        "content": [
                            {"type": "tool_result", "tool_use_id": "t1", "content": "step 1"}
                        ]
                    },
                },
                assistant(
                    {
                        "type": "tool_use",
                        "id": "t2",
                        "name": "mcp__hyperhive__send",
                        "input": {"to": "bob", "body": "hi bob"},
                    }
                ),
                result("all done"),
            ],
        ]
    )
    async with Events(hive) as events, harness_for(hive, "alice", runner):
        await wait_until(lambda: events.of(ev.TurnFinished), what="the kick's turn")
        await hive.op(v.Send(to="alice", body="please do the plan"))
        await wait_until(lambda: len(events.of(ev.TurnFinished)) >= 2, what="the message's turn")
    started = events.of(ev.TurnStarted)[1]
    assert (started.trigger, started.model) == ("message", hive.cfg.default_model)
    steps = [
        (s.step, s.tool, s.excerpt) for s in events.of(ev.TurnStep) if s.turn_id == started.turn_id
    ]
    assert steps == [
        ("text", None, "Reading the plan."),
        ("tool_use", "Read", "Read /state/plan.md"),
        ("tool_result", None, "step 1"),
        ("tool_use", "mcp__hyperhive__send", "send → bob: hi bob"),
    ]
    finished = events.of(ev.TurnFinished)[1]
    assert finished.turn_id == started.turn_id
    assert (finished.usage.input_tokens, finished.usage.cache_read_tokens) == (100, 5)
    assert (finished.cost_usd, finished.num_turns, finished.result_excerpt) == (
        0.0123,
        2,
        "all done",
    )
    prompt = runner.invocations[1].prompt
    assert "Message from operator:" in prompt
    assert "please do the plan" in prompt


async def test_a_new_model_lands_on_the_next_turn_and_the_session_is_resumed(
    hive: LiveHive,
) -> None:
    runner = ScriptedRunner(turns=[[result(session="sess-A")], [result(session="sess-A")]])
    async with Events(hive) as events, harness_for(hive, "alice", runner):
        await wait_until(lambda: events.of(ev.TurnFinished), what="the kick's turn")
        await hive.op(v.SetModel(name="alice", model="opus"))
        await hive.op(v.Send(to="alice", body="go"))
        await wait_until(lambda: len(events.of(ev.TurnFinished)) >= 2, what="the next turn")
    first, second = runner.invocations[:2]
    assert first.argv[first.argv.index("--model") + 1] == hive.cfg.default_model
    assert second.argv[second.argv.index("--model") + 1] == "opus"
    assert "--resume" not in first.argv
    assert second.argv[second.argv.index("--resume") + 1] == "sess-A"


async def test_a_paused_agent_takes_no_turn_until_resumed(hive: LiveHive) -> None:
    runner = ScriptedRunner(turns=[[result()], [result("resumed")]])
    async with Events(hive) as events, harness_for(hive, "alice", runner):
        await wait_until(lambda: events.of(ev.TurnFinished), what="the kick's turn")
        await hive.op(v.Pause(name="alice"))
        await hive.op(v.Send(to="alice", body="while paused"))
        # It may have been in recv when paused: that message is held, not run, until resumed.
        await wait_until(
            lambda: len(runner.invocations) == 1 and hive.core.state.agents["alice"].paused,
            what="alice paused",
        )
        assert len(events.of(ev.TurnStarted)) == 1
        await hive.op(v.Resume(name="alice"))
        await wait_until(
            lambda: len(events.of(ev.TurnFinished)) >= 2, timeout=15, what="the held turn"
        )
    assert "while paused" in runner.invocations[1].prompt


async def test_cancel_during_a_turn_is_a_cancelled_turn_and_the_loop_goes_on(
    hive: LiveHive,
) -> None:
    hold = asyncio.Event()
    runner = ScriptedRunner(
        turns=[
            [result()],
            [assistant({"type": "text", "text": "thinking..."}), result()],
            [result()],
        ]
    )
    async with Events(hive) as events, harness_for(hive, "alice", runner):
        await wait_until(lambda: events.of(ev.TurnFinished), what="the kick's turn")
        runner.hold = hold
        await hive.op(v.Send(to="alice", body="slow one"))
        await wait_until(lambda: hive.core.state.agents["alice"].turn_id, what="the slow turn")
        reply = await hive.op(v.CancelTurn(name="alice"))
        assert reply["harness"]["result"]["cancelled"] is True
        await wait_until(lambda: events.of(ev.TurnCancelled), timeout=5, what="turn.cancelled")
        runner.hold = None
        await hive.op(v.Send(to="alice", body="after"))
        await wait_until(lambda: len(events.of(ev.TurnFinished)) >= 2, what="the next turn")
    assert events.of(ev.TurnCancelled)[0].by == "operator"


async def test_garbage_a_crash_and_no_result_are_failed_turns_and_the_loop_goes_on(
    hive: LiveHive,
) -> None:
    runner = ScriptedRunner(
        turns=[
            [result()],
            [
                b"not json at all",
                b"\x00\xff",
                b"[1,2,3]",
                assistant({"type": "text", "text": "hm"}),
            ],
            [result("fine")],
        ]
    )
    async with Events(hive) as events, harness_for(hive, "alice", runner):
        await wait_until(lambda: events.of(ev.TurnFinished), what="the kick's turn")
        await hive.op(v.Send(to="alice", body="one"))
        await wait_until(lambda: events.of(ev.TurnFailed), what="the failed turn")
        await hive.op(v.Send(to="alice", body="two"))
        await wait_until(lambda: len(events.of(ev.TurnFinished)) >= 2, what="the next turn")
    assert "without a result" in events.of(ev.TurnFailed)[0].error


async def test_a_missing_claude_is_a_clear_failed_turn_not_a_crash_loop(hive: LiveHive) -> None:
    async with Events(hive) as events, harness_for(hive, "alice", CliRunner("/nonexistent/claude")):
        await wait_until(lambda: events.of(ev.TurnFailed), what="the failed kick turn")
        await hive.op(v.Send(to="alice", body="hello?"))
        await wait_until(lambda: len(events.of(ev.TurnFailed)) >= 2, what="a second failed turn")
    assert all(
        "claude not found: install @anthropic-ai/claude-code" in f.error
        for f in events.of(ev.TurnFailed)
    )


async def test_a_login_error_marks_the_agent_as_needing_login(hive: LiveHive) -> None:
    login = result("Invalid API key · Please run /login", is_error=True)
    runner = ScriptedRunner(turns=[[login]])
    async with Events(hive) as events, harness_for(hive, "alice", runner):
        await wait_until(lambda: events.of(ev.AgentNeedsLogin), what="needs_login")
    await wait_until(
        lambda: hive.core.state.agents["alice"].needs_login, what="c0re to fold needs_login"
    )


async def test_a_huge_step_is_cut_and_the_transcript_is_kept(hive: LiveHive) -> None:
    huge = "x" * 500_000
    runner = ScriptedRunner(turns=[[assistant({"type": "text", "text": huge}), result()]])
    async with Events(hive) as events, harness_for(hive, "alice", runner) as h:
        await wait_until(lambda: events.of(ev.TurnFinished), what="the turn")
        turn_id = events.of(ev.TurnFinished)[0].turn_id
        lines = h.transcripts.lines(turn_id)
    (step,) = events.of(ev.TurnStep)
    assert step.truncated
    assert len(step.excerpt) <= 2000
    assert len(lines) == 2
    assert len(lines[0]) <= 64 * 1024
    assert json.loads(lines[1])["type"] == "result"


async def test_a_session_too_long_is_compacted_once_and_the_turn_retried(hive: LiveHive) -> None:
    too_long = result("Prompt is too long", is_error=True, terminal_reason="prompt_too_long")
    runner = ScriptedRunner(
        turns=[[result()], [too_long], [result("compacted")], [result("done after compaction")]]
    )
    async with Events(hive) as events, harness_for(hive, "alice", runner):
        await wait_until(lambda: events.of(ev.TurnFinished), what="the kick's turn")
        await hive.op(v.Send(to="alice", body="a long task"))
        await wait_until(lambda: len(events.of(ev.TurnFinished)) >= 2, what="the retried turn")
    prompts = [inv.prompt for inv in runner.invocations[1:]]
    assert prompts[1] == "/compact"
    assert "a long task" in prompts[0]
    assert "a long task" in prompts[2]
    assert events.of(ev.TurnFinished)[1].result_excerpt == "done after compaction"
    assert not events.of(ev.TurnFailed)


async def test_when_compaction_does_not_help_the_session_starts_afresh(hive: LiveHive) -> None:
    too_long = result("Prompt is too long", is_error=True, terminal_reason="prompt_too_long")
    runner = ScriptedRunner(
        turns=[[result(session="old")], [too_long], [too_long], [result("fresh", session="new")]]
    )
    async with Events(hive) as events, harness_for(hive, "alice", runner):
        await wait_until(lambda: events.of(ev.TurnFinished), what="the kick's turn")
        await hive.op(v.Send(to="alice", body="another task"))
        await wait_until(lambda: len(events.of(ev.TurnFinished)) >= 2, what="the fresh turn")
    last = runner.invocations[-1]
    assert "--resume" not in last.argv
    assert "was reset" in last.prompt


async def harness_verb(hive: LiveHive, agent: str, verb: str) -> dict[str, Any]:
    subject = subjects.harness_command_subject(hive.cfg.hive, agent, verb)
    reply = await hive.operator.request(subject, b"{}", timeout=5)
    data: dict[str, Any] = json.loads(reply.data)
    return data


async def test_clear_starts_the_next_turn_in_a_new_session(hive: LiveHive) -> None:
    runner = ScriptedRunner(turns=[[result(session="old")], [result(session="new")]])
    async with Events(hive) as events, harness_for(hive, "alice", runner):
        await wait_until(lambda: events.of(ev.TurnFinished), what="the kick's turn")
        assert (await harness_verb(hive, "alice", "clear"))["result"] == {"cleared": True}
        again = await harness_verb(hive, "alice", "clear")
        assert again["ok"] is False
        assert "no session" in again["error"]
        await hive.op(v.Send(to="alice", body="fresh start"))
        await wait_until(lambda: len(events.of(ev.TurnFinished)) >= 2, what="the next turn")
    assert "--resume" not in runner.invocations[1].argv


async def test_compact_is_a_turn_of_its_own_on_the_same_session(hive: LiveHive) -> None:
    runner = ScriptedRunner(turns=[[result(session="s9")], [result("compacted", session="s9")]])
    async with Events(hive) as events, harness_for(hive, "alice", runner):
        await wait_until(lambda: events.of(ev.TurnFinished), what="the kick's turn")
        reply = await harness_verb(hive, "alice", "compact")
        assert reply["result"] == {"compacting": True}
        await wait_until(lambda: len(events.of(ev.TurnFinished)) >= 2, what="the compaction turn")
    compaction = runner.invocations[1]
    assert compaction.prompt == "/compact"
    assert compaction.argv[compaction.argv.index("--resume") + 1] == "s9"
    assert events.of(ev.TurnStarted)[1].trigger == "operator"


async def test_clear_and_compact_are_refused_during_a_turn(hive: LiveHive) -> None:
    hold = asyncio.Event()
    runner = ScriptedRunner(turns=[[result()], [result()]])
    async with Events(hive) as events, harness_for(hive, "alice", runner):
        await wait_until(lambda: events.of(ev.TurnFinished), what="the kick's turn")
        runner.hold = hold
        await hive.op(v.Send(to="alice", body="slow one"))
        await wait_until(lambda: hive.core.state.agents["alice"].turn_id, what="the slow turn")
        for verb in ("clear", "compact"):
            reply = await harness_verb(hive, "alice", verb)
            assert reply["ok"] is False
            assert "in a turn" in reply["error"]
        hold.set()
        await wait_until(lambda: len(events.of(ev.TurnFinished)) >= 2, what="the slow turn's end")
    assert [i.prompt for i in runner.invocations].count("/compact") == 0
