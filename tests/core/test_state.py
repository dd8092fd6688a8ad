"""The fold, pure: turn states, questions and approvals resolved once, deadlines from events."""

from __future__ import annotations

from datetime import timedelta

from hyperhive import events as ev
from hyperhive.commands import verbs as v
from hyperhive.core import deadlines
from hyperhive.core.state import fold, turn_state
from tests.core.helpers import HIVE, Hive

OP = "_operator"


def ts(h: Hive, name: str) -> str:
    return turn_state(h.state, h.state.agents[name])


def test_turn_state_follows_the_agents_life() -> None:
    h = Hive()
    h.agent("alice", running=False)
    assert ts(h, "alice") == "stopped"
    h.fold(ev.AgentStarted(hive=HIVE, agent="alice", source="c0re"))
    assert ts(h, "alice") == "idle"
    h.fold(ev.RecvWaiting(hive=HIVE, agent="alice", source="harness", wait_seconds=180))
    assert ts(h, "alice") == "waiting"
    h.fold(
        ev.TurnStarted(
            hive=HIVE, agent="alice", source="harness", turn_id="t1", model="m", trigger="message"
        )
    )
    assert ts(h, "alice") == "thinking"
    h.fold(
        ev.TurnFinished(
            hive=HIVE,
            agent="alice",
            source="harness",
            turn_id="t1",
            duration_ms=1200,
            cost_usd=0.01,
        )
    )
    assert ts(h, "alice") == "idle"
    last = h.state.agents["alice"].last_turn
    assert last is not None
    assert (last.outcome, last.duration_ms, last.cost_usd) == ("finished", 1200, 0.01)
    h.fold(ev.AgentPaused(hive=HIVE, agent="alice", source="c0re"))
    assert ts(h, "alice") == "paused"
    h.fold(ev.AgentCrashed(hive=HIVE, agent="alice", source="c0re", signal="SIGKILL"))
    assert ts(h, "alice") == "crashed"


def test_inbox_depth_counts_what_was_sent_and_not_yet_delivered() -> None:
    h = Hive()
    h.agent("alice")
    h.agent("bob")
    ids = [h.do("alice", v.Send(to="bob", body=str(i))).result["msg_id"] for i in range(3)]
    assert len(h.state.inbox["bob"]) == 3
    h.fold(ev.RecvDelivered(hive=HIVE, agent="bob", source="harness", message_ids=ids[:2]))
    assert list(h.state.inbox["bob"]) == ids[2:]


def test_a_question_expires_at_its_own_deadline_and_only_once() -> None:
    h = Hive()
    h.agent("alice")
    qid = h.do("alice", v.AskOperator(question="q", ttl_seconds=2)).result["question_id"]
    assert deadlines.next_deadline(h.state) == h.now + timedelta(seconds=2)
    h.later(1.9)
    assert deadlines.due(h.state, h.ctx()) == []
    h.later(0.2)
    due = deadlines.due(h.state, h.ctx())
    assert [e.kind for e in due] == ["question.expired", "message.sent"]
    h.fold(*due)
    assert h.state.questions[qid].status == "expired"
    assert h.state.questions[qid].answer == "[expired]"
    assert deadlines.due(h.state, h.ctx()) == []
    # A late answer event (another c0re, a replay) changes nothing.
    h.fold(
        ev.QuestionAnswered(
            hive=HIVE, agent="alice", source="c0re", question_id=qid, answer="x", by="op"
        )
    )
    assert h.state.questions[qid].status == "expired"


def test_a_crash_fails_the_open_turn_tells_the_manager_and_keeps_questions_open() -> None:
    h = Hive()
    h.agent("manager")
    h.agent("alice")
    qid = h.do("alice", v.AskOperator(question="q")).result["question_id"]
    h.fold(
        ev.TurnStarted(
            hive=HIVE, agent="alice", source="harness", turn_id="t9", model="m", trigger="kick"
        )
    )
    events = deadlines.crashed(h.state, h.ctx(), "alice", None, "SIGKILL", None, ["boom"], False)
    assert [e.kind for e in events] == ["agent.crashed", "turn.failed", "message.sent"]
    h.fold(*events)
    assert ts(h, "alice") == "crashed"
    assert h.state.questions[qid].status == "open"
    note = events[2]
    assert isinstance(note, ev.MessageSent)
    assert (note.to, note.system_kind) == ("manager", "container_crash")


def test_an_exit_while_an_action_is_in_flight_is_no_crash() -> None:
    h = Hive()
    h.agent("alice")
    h.do(OP, v.Stop(name="alice"))
    assert deadlines.crashed(h.state, h.ctx(), "alice", 0, None, None, [], False) == []


def test_folding_from_nothing_gives_the_same_state_as_folding_live() -> None:
    h = Hive()
    log: list[tuple[int, ev.AnyEvent]] = []
    original = h.fold

    def recording(*events: ev.Event) -> None:
        for e in events:
            original(e)
            log.append((h.seq, e))

    h.fold = recording  # type: ignore[method-assign]
    h.agent("manager")
    h.agent("alice")
    h.do("alice", v.Send(to="manager", body="hi"))
    h.do("alice", v.AskOperator(question="q"))
    aid = h.do("manager", v.RequestSpawn(name="bob")).result["approval_id"]
    h.do(OP, v.Approve(approval_id=aid))
    h.do(OP, v.Destroy(name="alice"))
    h.fold(ev.AgentDestroyed(hive=HIVE, agent="alice", source="c0re"))
    assert fold(HIVE, log) == h.state
