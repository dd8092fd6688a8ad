"""The rules, pure: each verb's decision and its refusals, against a folded state."""

from __future__ import annotations

import pytest

from hyperhive import events as ev
from hyperhive.commands import ALL_COMMANDS, CommandRefused, decode_command
from hyperhive.commands import verbs as v
from hyperhive.core import ports
from hyperhive.core.decide import ApplyCommit, CancelTurn, Lifecycle, handled_commands
from hyperhive.core.state import turn_state
from tests.core.helpers import HIVE, Hive

OP = "_operator"


@pytest.fixture
def hive() -> Hive:
    h = Hive()
    h.agent("manager")
    h.agent("alice")
    h.agent("bob")
    return h


def test_every_verb_has_a_rule() -> None:
    assert handled_commands() == set(ALL_COMMANDS)


# ---------------------------------------------------------------- messages


def test_an_agent_sends_a_message_into_the_recipients_inbox(hive: Hive) -> None:
    d = hive.do("alice", v.Send(to="bob", body="hi"))
    (msg,) = d.events
    assert isinstance(msg, ev.MessageSent)
    assert (msg.from_, msg.to, msg.body, msg.agent) == ("alice", "bob", "hi", "alice")
    assert hive.state.inbox["bob"] == (msg.msg_id,)
    assert d.result["msg_id"] == msg.msg_id


@pytest.mark.parametrize("to", ["carol", "..", "a/b", "*", ">", "x" * 200, "_system"])
def test_a_message_to_an_unknown_or_hostile_recipient_is_refused(hive: Hive, to: str) -> None:
    with pytest.raises(CommandRefused, match=r"unknown recipient|invalid agent name"):
        hive.do("alice", v.Send(to=to, body="hi"))


def test_the_operator_sends_as_operator_and_agents_may_write_to_the_operator(hive: Hive) -> None:
    (msg,) = hive.do(OP, v.Send(to="alice", body="hello")).events
    assert isinstance(msg, ev.MessageSent)
    assert (msg.from_, msg.agent) == ("operator", None)
    (back,) = hive.do("alice", v.Send(to="operator", body="hi")).events
    assert isinstance(back, ev.MessageSent)
    assert back.to == "operator"


def test_an_unknown_agent_may_not_command(hive: Hive) -> None:
    with pytest.raises(CommandRefused, match="unknown agent 'mallory'"):
        hive.do("mallory", v.Send(to="bob", body="hi"))


# ---------------------------------------------------------------- questions


def test_a_question_is_answered_once_and_the_asker_is_told(hive: Hive) -> None:
    d = hive.do("alice", v.AskOperator(question="ok?", options=["yes", "no"], ttl_seconds=60))
    qid = d.result["question_id"]
    assert turn_state(hive.state, hive.state.agents["alice"]) == "asking"
    answered = hive.do(OP, v.Answer(question_id=qid, answer="yes"))
    kinds = [e.kind for e in answered.events]
    assert kinds == ["question.answered", "message.sent"]
    msg = answered.events[1]
    assert isinstance(msg, ev.MessageSent)
    assert (msg.to, msg.from_, msg.system_kind, msg.ref) == (
        "alice",
        "_system",
        "operator_answered",
        qid,
    )
    assert "ok?" in msg.body
    assert "yes" in msg.body
    with pytest.raises(CommandRefused, match=r"already answered by operator"):
        hive.do(OP, v.Answer(question_id=qid, answer="no"))
    with pytest.raises(CommandRefused, match="already answered"):
        hive.do(OP, v.CancelQuestion(question_id=qid))


def test_a_cancelled_question_resolves_as_cancelled(hive: Hive) -> None:
    qid = hive.do("alice", v.AskOperator(question="q")).result["question_id"]
    d = hive.do(OP, v.CancelQuestion(question_id=qid, reason="moot"))
    assert hive.state.questions[qid].status == "cancelled"
    assert "[cancelled]" in d.events[1].body  # type: ignore[attr-defined]


def test_answering_an_unknown_question_is_refused(hive: Hive) -> None:
    with pytest.raises(CommandRefused, match="unknown question"):
        hive.do(OP, v.Answer(question_id="nope", answer="x"))


@pytest.mark.parametrize("ttl", [-1, 0, 10**12])
def test_an_absurd_ttl_never_reaches_a_decision(ttl: int) -> None:
    from hyperhive.commands import InvalidCommand

    with pytest.raises(InvalidCommand, match="ttl_seconds"):
        decode_command("ask_operator", b'{"question":"q","ttl_seconds":%d}' % ttl)


# ---------------------------------------------------------------- approvals


def test_only_the_manager_requests_a_spawn_and_the_operator_decides_once(hive: Hive) -> None:
    with pytest.raises(CommandRefused, match="manager's verb"):
        hive.do("alice", v.RequestSpawn(name="carol"))
    aid = hive.do("manager", v.RequestSpawn(name="carol")).result["approval_id"]
    with pytest.raises(CommandRefused, match="already waiting"):
        hive.do("manager", v.RequestSpawn(name="carol"))
    approved = hive.do(OP, v.Approve(approval_id=aid, note="welcome"))
    assert approved.effect == Lifecycle("spawn", "carol", approval_id=aid)
    assert [e.kind for e in approved.events] == ["approval.approved", "message.sent"]
    with pytest.raises(CommandRefused, match="already approved by operator"):
        hive.do(OP, v.Deny(approval_id=aid))


def test_a_denied_request_tells_the_requester(hive: Hive) -> None:
    aid = hive.do("manager", v.RequestSpawn(name="carol")).result["approval_id"]
    d = hive.do(OP, v.Deny(approval_id=aid, note="not now"))
    assert d.effect is None
    msg = d.events[1]
    assert isinstance(msg, ev.MessageSent)
    assert (msg.to, msg.system_kind) == ("manager", "approval_resolved")
    assert "denied (not now)" in msg.body


def test_apply_commit_is_requested_by_the_manager_and_carried_out_on_approval(hive: Hive) -> None:
    aid = hive.do("manager", v.RequestApplyCommit(agent="alice", commit_ref="abc123")).result[
        "approval_id"
    ]
    d = hive.do(OP, v.Approve(approval_id=aid))
    assert d.effect == ApplyCommit(aid, "alice", "abc123")


# ---------------------------------------------------------------- lifecycle


@pytest.mark.parametrize("name", ["..", "a/b", "*", ">", "x" * 200, "Alice", ""])
def test_hostile_names_are_refused_before_anything_is_done(hive: Hive, name: str) -> None:
    for command in (v.Spawn(name=name), v.Destroy(name=name, purge=True), v.Start(name=name)):
        with pytest.raises(CommandRefused, match="invalid agent name"):
            hive.do(OP, command)


def test_spawn_refuses_an_existing_or_reserved_name(hive: Hive) -> None:
    with pytest.raises(CommandRefused, match="already exists"):
        hive.do(OP, v.Spawn(name="alice"))
    with pytest.raises(CommandRefused, match="reserved"):
        hive.do(OP, v.Spawn(name="operator"))


def test_a_spawn_whose_port_collides_is_refused_naming_the_other_agent() -> None:
    h = Hive()
    names: dict[int, list[str]] = {}
    candidate = 0
    while True:  # two names with one port (FNV-1a mod 900: found quickly)
        n = f"a{candidate}"
        names.setdefault(ports.agent_port(n), []).append(n)
        if len(names[ports.agent_port(n)]) == 2:
            first, second = names[ports.agent_port(n)]
            break
        candidate += 1
    h.agent(first)
    with pytest.raises(CommandRefused, match=rf"'{first}'.*rename"):
        h.do(OP, v.Spawn(name=second))


def test_the_manager_may_not_stop_or_destroy_itself(hive: Hive) -> None:
    with pytest.raises(CommandRefused, match="may not stop itself"):
        hive.do("manager", v.Stop(name="manager"))
    with pytest.raises(CommandRefused, match="may not be destroyed"):
        hive.do(OP, v.Destroy(name="manager"))


def test_a_lifecycle_action_is_marked_in_flight_and_a_second_waits(hive: Hive) -> None:
    d = hive.do(OP, v.Stop(name="alice"))
    assert d.effect == Lifecycle("stop", "alice")
    assert hive.state.agents["alice"].action == "stop"
    with pytest.raises(CommandRefused, match="busy"):
        hive.do(OP, v.Restart(name="alice"))


def test_starting_a_running_agent_changes_nothing(hive: Hive) -> None:
    d = hive.do(OP, v.Start(name="alice"))
    assert (d.events, d.effect, d.result["changed"]) == ([], None, False)


def test_pause_works_on_a_stopped_agent_and_is_idempotent() -> None:
    h = Hive()
    h.agent("alice", running=False)
    assert [e.kind for e in h.do(OP, v.Pause(name="alice")).events] == ["agent.paused"]
    assert h.do(OP, v.Pause(name="alice")).effect is None
    assert h.do(OP, v.Pause(name="alice")).events == []
    assert h.state.agents["alice"].paused


def test_destroy_keeps_state_and_purge_of_a_kept_agent_is_allowed(hive: Hive) -> None:
    d = hive.do(OP, v.Destroy(name="alice"))
    assert d.effect == Lifecycle("destroy", "alice", purge=False)
    hive.fold(ev.AgentDestroyed(hive=HIVE, agent="alice", source="c0re"))
    assert "alice" in hive.state.kept
    with pytest.raises(CommandRefused, match="already destroyed"):
        hive.do(OP, v.Destroy(name="alice"))
    assert hive.do(OP, v.Destroy(name="alice", purge=True)).effect == Lifecycle(
        "destroy", "alice", purge=True
    )


def test_cancel_turn_reaches_the_running_turn(hive: Hive) -> None:
    assert hive.do(OP, v.CancelTurn(name="alice")).effect is None
    hive.fold(
        ev.TurnStarted(
            hive=HIVE, agent="alice", source="harness", turn_id="t1", model="m", trigger="message"
        )
    )
    assert hive.do(OP, v.CancelTurn(name="alice")).effect == CancelTurn("alice", "t1")


def test_self_tells_an_agent_its_model_and_who_else_is_here(hive: Hive) -> None:
    hive.do(OP, v.SetModel(name="alice", model="opus"))
    row = hive.do("alice", v.GetSelf()).result
    assert (row["model"], row["paused"], row["agents"]) == ("opus", False, ["bob", "manager"])


def test_operator_verbs_are_not_for_agents(hive: Hive) -> None:
    with pytest.raises(CommandRefused, match="operator's verb"):
        hive.do("alice", v.Approve(approval_id="x"))
    with pytest.raises(CommandRefused, match="agent's verb"):
        hive.do(OP, v.AskOperator(question="q"))
