"""One hive's view, without NATS: what each event changes on the pages, and what a browser
that listens (or comes back) is sent."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from hyperhive import events as ev
from hyperhive.bus.records import Record, subject_for, to_record
from hyperhive.web import hub as hub_module
from hyperhive.web.hub import HiveView, Listener
from hyperhive.web.render import Parts, environment

HIVE = "h1"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def view() -> HiveView:
    v = HiveView(HIVE, Parts(environment()), default_model="sonnet")
    v.loaded.set()
    return v


class Feed:
    """Events as records with the next stream sequence."""

    def __init__(self) -> None:
        self.seqs = itertools.count(1)

    def __call__(self, e: ev.Event) -> Record:
        return to_record(HIVE, next(self.seqs), subject_for(e), ev.encode_event(e))


def ops_of(update: hub_module.Update | None) -> list[tuple[str, str, str]]:
    assert update is not None
    return [tuple(op) for op in msgspec.json.decode(update.payload)["ops"]]


def notice_of(update: hub_module.Update | None) -> dict[str, str] | None:
    assert update is not None
    result: dict[str, str] | None = msgspec.json.decode(update.payload)["notify"]
    return result


def spawned(name: str) -> ev.AgentSpawned:
    return ev.AgentSpawned(hive=HIVE, agent=name, source="c0re", backend="process", port=8100)


def started(name: str) -> ev.AgentStarted:
    return ev.AgentStarted(hive=HIVE, agent=name, source="c0re", backend="process")


def test_a_new_agent_redraws_the_list_and_a_status_only_its_row(view: HiveView) -> None:
    rec = Feed()
    targets = [t for _, t, _ in ops_of(view.apply(rec(spawned("alice"))))]
    assert targets == ["feed", "agents", "banner-ports"]
    view.apply(rec(started("alice")))
    ops = ops_of(
        view.apply(
            rec(ev.AgentStatusSet(hive=HIVE, agent="alice", source="c0re", status_text="<b>x</b>"))
        )
    )
    assert [(o, t) for o, t, _ in ops] == [
        ("prepend", "feed"),
        ("morph", "agent-alice"),
        ("morph", "state-alice"),
        ("morph", "inbox-count-alice"),
    ]
    row = ops[1][2]
    assert "&lt;b&gt;x&lt;/b&gt;" in row
    assert "<b>" not in row


def test_a_question_is_a_card_while_open_and_goes_when_answered(view: HiveView) -> None:
    rec = Feed()
    view.apply(rec(spawned("alice")))
    view.apply(rec(started("alice")))
    asked = ev.QuestionAsked(
        hive=HIVE,
        agent="alice",
        source="c0re",
        question_id="Q1",
        question="ok?",
        options=["yes", "no"],
        ttl_seconds=60,
        expires_at=T0 + timedelta(minutes=1),
    )
    update = view.apply(rec(asked))
    ops = ops_of(update)
    card = next(html for op, t, html in ops if op == "append" and t == "questions")
    assert 'id="q-Q1"' in card
    assert 'type="radio"' in card
    assert ("morph", "counts") in [(o, t) for o, t, _ in ops]
    assert ("morph", "agent-alice") in [(o, t) for o, t, _ in ops]  # alice is asking now
    assert notice_of(update) == {
        "kind": "question",
        "title": "alice asks",
        "body": "ok?",
        "tag": "Q1",
    }
    answered = ev.QuestionAnswered(
        hive=HIVE, agent="alice", source="c0re", question_id="Q1", answer="yes", by="operator"
    )
    ops = ops_of(view.apply(rec(answered)))
    assert ("remove", "q-Q1", "") in ops
    assert (
        notice_of(
            view.apply(
                rec(
                    ev.TurnStep(
                        hive=HIVE,
                        agent="alice",
                        source="harness",
                        turn_id="T",
                        step="text",
                        excerpt="hi",
                    )
                )
            )
        )
        is None
    )


def test_turn_events_go_to_the_agents_terminal_and_messages_to_inboxes(view: HiveView) -> None:
    rec = Feed()
    view.apply(rec(spawned("alice")))
    step = ev.TurnStep(
        hive=HIVE,
        agent="alice",
        source="harness",
        turn_id="T",
        step="tool_use",
        tool="Read",
        excerpt="Read /x",
    )
    ops = ops_of(view.apply(rec(step)))
    assert [(o, t) for o, t, _ in ops] == [("prepend", "feed"), ("append", "term-alice")]
    to_me = ev.MessageSent(
        hive=HIVE,
        agent="alice",
        source="c0re",
        msg_id="M1",
        from_="alice",
        to="operator",
        body="hi",
    )
    update = view.apply(rec(to_me))
    assert ("prepend", "operator-inbox") in [(o, t) for o, t, _ in ops_of(update)]
    assert notice_of(update) == {
        "kind": "message",
        "title": "message from alice",
        "body": "hi",
        "tag": "M1",
    }
    assert [m.body for m in view.operator_inbox] == ["hi"]
    to_alice = ev.MessageSent(
        hive=HIVE, agent=None, source="c0re", msg_id="M2", from_="operator", to="alice", body="go"
    )
    targets = [(o, t) for o, t, _ in ops_of(view.apply(rec(to_alice)))]
    assert ("prepend", "agent-msgs-alice") in targets
    assert ("morph", "agent-alice") in targets


def test_a_malformed_message_is_a_feed_row_and_takes_its_sequence(view: HiveView) -> None:
    bad = to_record(HIVE, 7, "hive.h1.evt.alice.agent.status_set", b'{"not": "an event"}')
    ops = ops_of(view.apply(bad))
    assert len(ops) == 1
    assert "malformed" in ops[0][2]
    assert view.position == 7
    assert view.apply(bad) is None  # the same sequence again: nothing


def test_a_listener_gets_the_backlog_it_missed_then_the_rest(view: HiveView) -> None:
    rec = Feed()
    for name in ("a", "b", "c"):
        view.apply(rec(spawned(name)))
    listener, backlog = view.listen(after=1)
    assert [u.seq for u in backlog or []] == [2, 3]
    view.apply(rec(spawned("d")))
    assert listener.queue.get_nowait().seq == 4  # type: ignore[union-attr]
    assert view.listen(after=3)[1] == [view.ring[-1]]
    assert view.listen(after=None)[1] == []
    assert view.listen(after=99)[1] is None  # never had that sequence: resync
    view.ring.clear()
    assert view.listen(after=1)[1] is None  # too old for the ring: resync
    view.loaded.clear()
    waiting, backlog = view.listen(after=4)
    assert backlog == []  # still (re)loading: it waits, and the load ends in a resync
    view._broadcast_resync()
    assert waiting.stale
    assert waiting.queue.get_nowait() is None


def test_a_listener_that_falls_behind_is_cut_loose_and_told(view: HiveView) -> None:
    rec = Feed()
    slow = Listener(queue=asyncio.Queue(maxsize=2))
    view.listeners.add(slow)
    for name in ("a", "b", "c"):
        view.apply(rec(spawned(name)))
    assert slow.stale
    assert slow not in view.listeners
    items = [slow.queue.get_nowait() for _ in range(slow.queue.qsize())]
    assert items[-1] is None  # "take a snapshot"


def test_the_connection_state_reaches_listeners_as_a_status(view: HiveView) -> None:
    listener, _ = view.listen(after=None)
    view.set_connected(False)
    status = listener.queue.get_nowait()
    assert status is not None
    assert status.event == "status"
    data = msgspec.json.decode(status.payload)
    assert data["connected"] is False
    assert "hidden" not in data["html"]
