"""c0re for real: a hive on its own nats-server, stand-in agents as child processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import pytest

from hyperhive import events as ev
from hyperhive.bus import rpc, subjects
from hyperhive.bus.inbox import recv
from hyperhive.commands import CommandRefused, decode_reply, encode_command
from hyperhive.commands import verbs as v
from hyperhive.commands.base import Reply
from hyperhive.core.service import Deferred
from hyperhive.events import decode_event
from hyperhive.names import OPERATOR
from tests.core.conftest import LiveHive
from tests.helpers import wait_until

pytestmark = pytest.mark.nats


def received(live: LiveHive, agent: str) -> list[dict[str, object]]:
    path = live.state_dir / "agents" / agent / "state" / "received.ndjson"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def agent_row(live: LiveHive, name: str) -> dict[str, object]:
    rows = (await live.op(v.ListAgents()))["agents"]
    return next(r for r in rows if r["name"] == name)


async def test_the_manager_and_declared_agents_are_up_and_kicked(live: LiveHive) -> None:
    rows = {r["name"]: r for r in (await live.op(v.ListAgents()))["agents"]}
    assert set(rows) == {"manager", "alice", "bob"}
    assert {r["state"] for r in rows.values()} == {"running"}
    for name in rows:
        await wait_until(
            lambda n=name: any(m["system_kind"] == "kick" for m in received(live, n)),  # type: ignore[misc]
            what=f"{name} to get its start kick",
        )


async def test_a_message_between_agents_goes_through_c0re_and_recv(live: LiveHive) -> None:
    await live.op(v.Send(to="alice", body="send:bob:hello bob"))
    await wait_until(
        lambda: any(
            m["body"] == "hello bob" and m["from"] == "alice" for m in received(live, "bob")
        ),
        what="bob to receive alice's message",
    )


async def test_a_message_sent_while_the_recipient_is_down_is_delivered_once_after(
    live: LiveHive,
) -> None:
    await live.op(v.Stop(name="bob"))
    assert (await agent_row(live, "bob"))["state"] == "stopped"
    sent = await live.op(v.Send(to="bob", body="while you were out"))
    await live.op(v.Start(name="bob"))
    await wait_until(
        lambda: [m for m in received(live, "bob") if m["msg_id"] == sent["msg_id"]],
        what="the message to arrive after bob is back",
    )
    await live.op(v.Restart(name="bob"))
    await wait_until(
        lambda: sum(1 for m in received(live, "bob") if m["system_kind"] == "kick") >= 3,
        what="bob's restart kick",
    )
    assert [m["msg_id"] for m in received(live, "bob")].count(sent["msg_id"]) == 1


async def test_a_long_recv_returns_as_soon_as_a_message_arrives(live: LiveHive) -> None:
    await live.op(v.Stop(name="alice"))  # its recv would take the message
    nc = await live.as_agent("alice")
    while await recv(nc, live.cfg.hive, "alice", wait=0, announce=False):
        pass  # drain the kick
    waiting = asyncio.create_task(recv(nc, live.cfg.hive, "alice", wait=180))
    await wait_until(
        lambda: live.core.state.agents["alice"].waiting, what="alice's recv to be waiting"
    )
    await live.op(v.Send(to="alice", body="ping"))
    got = await asyncio.wait_for(waiting, 10)  # not the 180 s wait
    assert got is not None
    assert got.message is not None
    assert got.message.body == "ping"


async def test_a_question_is_answered_and_the_answer_lands_in_the_askers_inbox(
    live: LiveHive,
) -> None:
    await live.op(v.Send(to="alice", body="ask:60:deploy now?"))

    async def asked() -> list[dict[str, object]]:
        return list((await live.op(v.ListQuestions()))["questions"])

    (q,) = await wait_until(asked, what="alice's question")
    assert (q["agent"], q["question"], q["status"]) == ("alice", "deploy now?", "open")
    assert (await agent_row(live, "alice"))["turn_state"] == "asking"
    await live.op(v.Answer(question_id=q["question_id"], answer="yes, go"))
    await wait_until(
        lambda: any(
            m["system_kind"] == "operator_answered" and "yes, go" in str(m["body"])
            for m in received(live, "alice")
        ),
        what="the answer in alice's inbox",
    )
    with pytest.raises(CommandRefused, match="already answered"):
        await live.op(v.Answer(question_id=q["question_id"], answer="no"))


async def test_concurrent_decisions_on_one_approval_yield_exactly_one(
    live_fake: LiveHive,
) -> None:
    live = live_fake
    ids = []
    for i in range(100):
        ids.append((await live.agent_says("manager", v.RequestSpawn(name=f"w{i}")))["approval_id"])
    # Approve and deny each at once; denying first for half so both orders race.
    calls = []
    for i, aid in enumerate(ids):
        pair = [v.Approve(approval_id=aid), v.Deny(approval_id=aid)]
        if i % 2:
            pair.reverse()
        calls += [live.op(c, timeout=60) for c in pair]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    wins = [o for o in outcomes if isinstance(o, dict)]
    losses = [o for o in outcomes if isinstance(o, CommandRefused)]
    assert len(wins) == 100, [o for o in outcomes if not isinstance(o, dict | CommandRefused)]
    assert len(losses) == 100
    assert all("already" in str(e) for e in losses)
    settled = {
        a["approval_id"]: a["status"]
        for a in (await live.op(v.ListApprovals(all=True)))["approvals"]
    }
    assert all(settled[a] in ("applied", "denied", "failed") for a in ids)


async def test_killing_an_agents_process_is_a_crash_told_to_the_manager(live: LiveHive) -> None:
    backend = live.core.backend
    pid = backend.pid("bob")  # type: ignore[attr-defined]
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await wait_until(
        lambda: live.core.state.agents["bob"].state == "crashed", timeout=5, what="bob's crash"
    )
    assert (await agent_row(live, "bob"))["turn_state"] == "crashed"
    await wait_until(
        lambda: any(m["system_kind"] == "container_crash" for m in received(live, "manager")),
        what="the manager to hear of bob's crash",
    )


async def test_hostile_names_are_refused_and_purge_stays_inside_the_state_dir(
    live: LiveHive, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    for name in ("..", "a/b", "*", ">", "x" * 200, "../outside"):
        for cmd in (v.Spawn(name=name), v.Destroy(name=name, purge=True)):
            with pytest.raises(CommandRefused, match=r"invalid agent name|length <= 64"):
                await live.op(cmd)
    assert (outside / "keep").exists()
    assert not (live.state_dir / "agents" / "..").resolve().joinpath("keep").exists()


async def test_destroy_keeps_state_purge_removes_it_and_spawn_revives(live: LiveHive) -> None:
    alice_dir = live.state_dir / "agents" / "alice"
    await live.op(v.Destroy(name="alice"))
    listing = await live.op(v.ListAgents())
    assert "alice" not in {a["name"] for a in listing["agents"]}
    assert [k["name"] for k in listing["kept"]] == ["alice"]
    assert alice_dir.is_dir()
    await live.op(v.Spawn(name="alice"))
    assert (await agent_row(live, "alice"))["state"] == "running"
    await live.op(v.Destroy(name="alice", purge=True))
    assert not alice_dir.exists()
    assert live.state_dir.is_dir()


async def test_an_agent_flooding_its_own_subject_slows_only_itself(live: LiveHive) -> None:
    flooder = await live.as_agent("alice")
    subject = subjects.command_subject(live.cfg.hive, "alice", "set_status")
    garbage = [b"\x00\xff", b"{" * 5000, b"[]", b'{"text":' + b'"x"' * 3 + b"}", b"x" * 200_000]
    stop = asyncio.Event()

    async def flood() -> int:
        n = 0
        while not stop.is_set():
            for body in garbage:
                await flooder.publish(subject, body, reply=flooder.new_inbox())
                n += 1
            await flooder.publish(
                subjects.command_subject(live.cfg.hive, "alice", "nonsense_verb"),
                b"{}",
                reply=flooder.new_inbox(),
            )
            await asyncio.sleep(0)  # sleep-ok: a yield, so the flood and the probe interleave
        return n

    # Count, at each command c0re serves, how many of alice's were served while a
    # command of bob's or the operator's waited in its queue: round-robin serves a
    # waiting caller after at most the alice command under way and one more (a
    # caller whose queue appeared mid-round joins the next round).
    core = live.core
    serve = core.handle
    behind: dict[str, int] = {}
    worst = 0
    served = {"alice": 0, "bob": 0, OPERATOR: 0}

    async def counting(call: rpc.Call) -> Reply | Deferred:
        nonlocal worst
        served[call.caller] = served.get(call.caller, 0) + 1
        if call.caller == "alice":
            for caller, queue in core.queues.items():
                if caller != "alice" and queue:
                    behind[caller] = behind.get(caller, 0) + 1
                    worst = max(worst, behind[caller])
        else:
            behind.pop(call.caller, None)
        return await serve(call)

    core.handle = counting  # type: ignore[method-assign]
    flooding = asyncio.create_task(flood())
    try:
        for _ in range(20):
            await live.agent_says("bob", v.SetStatus(text="still here"))
            await live.op(v.ListAgents())
    finally:
        stop.set()
        sent = await flooding
        core.handle = serve  # type: ignore[method-assign]
    assert sent > 100
    assert served["alice"] > 40, served  # the flood really reached c0re alongside the probes
    assert served["bob"] >= 20, served
    assert served[OPERATOR] >= 20, served
    assert worst <= 2, f"{worst} of alice's commands were served while bob or the operator waited"
    assert live.task.done() is False
    with pytest.raises(CommandRefused, match="unknown verb"):
        await _raw(live, "alice", "nonsense_verb")


async def _raw(live: LiveHive, agent: str, verb: str) -> None:
    from hyperhive.bus.rpc import request
    from hyperhive.commands import decode_reply

    nc = await live.as_agent(agent)
    decode_reply(await request(nc, subjects.command_subject(live.cfg.hive, agent, verb), b"{}"))


async def test_an_agent_may_not_speak_as_another_or_use_operator_verbs(live: LiveHive) -> None:
    with pytest.raises(CommandRefused, match="operator's verb"):
        await live.agent_says("alice", v.Destroy(name="bob"))
    with pytest.raises(CommandRefused, match="manager's verb"):
        await live.agent_says("alice", v.RequestSpawn(name="eve"))


async def test_nonsense_operator_commands_are_refused_in_one_line(live: LiveHive) -> None:
    for cmd, why in (
        (v.Approve(approval_id="nope"), "unknown approval"),
        (v.Answer(question_id="nope", answer="x"), "unknown question"),
        (v.Destroy(name="manager"), "may not be destroyed"),
        (v.Start(name="ghost"), "unknown agent"),
        (v.Send(to="ghost", body="x"), "unknown recipient"),
    ):
        with pytest.raises(CommandRefused, match=why) as info:
            await live.op(cmd)
        assert "\n" not in str(info.value)


async def test_pause_model_and_status_are_in_the_agents_row(live: LiveHive) -> None:
    await live.op(v.Pause(name="bob"))
    await live.op(v.SetModel(name="bob", model="opus"))
    await live.agent_says("bob", v.SetStatus(text="thinking hard"))
    row = await agent_row(live, "bob")
    assert (row["paused"], row["turn_state"], row["model"], row["status_text"]) == (
        True,
        "paused",
        "opus",
        "thinking hard",
    )
    me = await live.agent_says("bob", v.GetSelf())
    assert (me["paused"], me["model"]) == (True, "opus")


async def test_an_event_kinds_story_is_on_the_stream(live: LiveHive) -> None:
    kinds = set()
    js = live.admin.jetstream()
    info = await js.stream_info(subjects.stream_name(live.cfg.hive))
    for seq in range(1, info.state.last_seq + 1):
        msg = await js.get_msg(subjects.stream_name(live.cfg.hive), seq)
        assert msg.data is not None
        kinds.add(ev.decode_event(msg.data).kind)
    assert {"agent.spawned", "agent.started", "agent.kicked", "message.sent"} <= kinds


async def test_logs_are_an_agents_harness_log_and_refused_for_strangers(live: LiveHive) -> None:
    log_path = live.state_dir / "agents" / "alice" / "harness.log"
    await wait_until(lambda: log_path.exists(), what="alice's harness.log")
    with log_path.open("a") as f:
        f.write("a line only this test wrote\n")
    reply = await live.op(v.Logs(name="alice", lines=5))
    assert reply["name"] == "alice"
    assert reply["lines"][-1] == "a line only this test wrote"
    assert len(reply["lines"]) <= 5
    for name, why in (("nobody", "unknown agent 'nobody'"), ("..", "invalid agent name")):
        with pytest.raises(CommandRefused, match=why):
            await live.op(v.Logs(name=name))


async def test_a_slow_log_read_does_not_hold_up_other_commands(live: LiveHive) -> None:
    gate = asyncio.Event()
    backend = live.core.backend
    real = backend.log_lines

    async def slow(agent: str, lines: int = 200) -> list[str]:
        await gate.wait()
        return await real(agent, lines)

    backend.log_lines = slow  # type: ignore[method-assign]
    try:
        pending = asyncio.create_task(live.op(v.Logs(name="alice")))
        rows = (await live.op(v.ListAgents()))["agents"]  # answered while the read waits
        assert {r["name"] for r in rows} >= {"alice"}
        assert not pending.done()
        gate.set()
        assert (await pending)["name"] == "alice"
    finally:
        backend.log_lines = real  # type: ignore[method-assign]


async def test_a_command_sent_again_with_its_request_id_is_carried_out_once(
    live_fake: LiveHive,
) -> None:
    """What a client does when an answer was lost (a node died): the same id, the same
    answer, one message."""
    live = live_fake
    subject = subjects.command_subject(live.cfg.hive, OPERATOR, "send")
    body = encode_command(v.Send(to="manager", body="only once"))
    headers = {rpc.REQUEST_ID: "retried-1"}
    first = await live.operator.request(subject, body, timeout=10, headers=headers)
    again = await live.operator.request(subject, body, timeout=10, headers=headers)
    assert first.data == again.data
    msg_id = decode_reply(first.data)["msg_id"]
    other = await live.op(v.Send(to="manager", body="only once"))
    assert other["msg_id"] != msg_id  # a new request id is a new command

    js = live.admin.jetstream()
    name = subjects.stream_name(live.cfg.hive)
    last = (await js.stream_info(name)).state.last_seq
    bodies = []
    for seq in range(1, last + 1):
        event = decode_event((await js.get_msg(name, seq)).data or b"")
        if isinstance(event, ev.MessageSent) and event.body == "only once":
            bodies.append(event.msg_id)
    assert sorted(bodies) == sorted([msg_id, other["msg_id"]])
