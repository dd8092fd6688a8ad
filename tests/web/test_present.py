"""What the pages show, worked out from the state and the events."""

from __future__ import annotations

from datetime import UTC, datetime

from hyperhive import events as ev
from hyperhive.core.state import Agent, HiveState, LastTurn
from hyperhive.web import present

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_an_answer_joins_the_picked_options_then_the_free_text() -> None:
    assert present.answer_text(["mon", " wed "], "") == "mon, wed"
    assert present.answer_text([], "  just text ") == "just text"
    assert present.answer_text(["yes"], "but carefully") == "yes\nbut carefully"
    assert present.answer_text(["  "], " ") == ""


def test_durations_read_as_people_say_them() -> None:
    assert present.seconds(2300) == "2.3 s"
    assert present.seconds(42_000) == "42 s"
    assert present.seconds(125_000) == "2 min 5 s"
    assert present.seconds(3_720_000) == "1 h 2 min"
    assert present.seconds(None) == "?"


def test_the_badge_says_needs_login_over_the_turn_state_while_running() -> None:
    a = Agent(name="alice", state="running", needs_login=True)
    state = HiveState(hive="h", agents={"alice": a})
    assert present.agent_view(state, a, "sonnet").badge == "needs login"
    stopped = Agent(name="alice", state="stopped", needs_login=True)
    assert present.agent_view(state, stopped, "sonnet").badge == "stopped"


def test_the_last_turn_chip_says_how_long_and_how_much_or_how_it_ended() -> None:
    done = LastTurn(turn_id="t", outcome="finished", ended_at=T0, duration_ms=2300, cost_usd=0.0123)
    assert present.last_turn_chip(Agent(name="a", last_turn=done))[:2] == (
        "2.3 s · $0.012",
        "finished",
    )
    failed = LastTurn(turn_id="t", outcome="failed", ended_at=T0, error="boom")
    assert present.last_turn_chip(Agent(name="a", last_turn=failed)) == ("failed", "failed", "boom")
    assert present.last_turn_chip(Agent(name="a")) == ("", "", "")


def test_the_manager_cannot_be_destroyed_from_the_page() -> None:
    assert "destroy" not in present.agent_actions(Agent(name="manager", state="running"))
    assert "purge" in present.agent_actions(Agent(name="alice", state="stopped"))
    assert present.agent_actions(Agent(name="alice", state="running", paused=True))[:3] == (
        "stop",
        "restart",
        "resume",
    )


def test_a_long_tool_result_is_collapsed_under_its_first_line() -> None:
    long = ev.TurnStep(
        hive="h",
        agent="a",
        source="harness",
        turn_id="t",
        step="tool_result",
        excerpt="first\n2\n3\n4\n5",
    )
    line = present.term_line(9, long)
    assert line is not None
    assert line.long
    assert line.head == "first"
    short = ev.TurnStep(
        hive="h", agent="a", source="harness", turn_id="t", step="tool_result", excerpt="ok"
    )
    assert present.term_line(9, short).long is False  # type: ignore[union-attr]
    cut = ev.TurnStep(
        hive="h", agent="a", source="harness", turn_id="t", step="text", excerpt="x", truncated=True
    )
    assert present.term_line(9, cut).text == "x …(cut)"  # type: ignore[union-attr]
    assert present.term_line(9, ev.AgentStarted(hive="h", agent="a", source="c0re")) is None


def test_a_feed_row_sums_an_event_up_on_one_line() -> None:
    msg = ev.MessageSent(
        hive="h", source="c0re", msg_id="m", from_="alice", to="bob", body="hi\nthere"
    )
    assert present.summary(msg) == "alice → bob: hi there"
    status = ev.AgentStatusSet(hive="h", agent="a", source="c0re", status_text="x" * 500)
    text = present.summary(status)
    assert text.startswith("status_text=xxx")
    assert len(text) == present.FEED_SUMMARY
    raw = ev.RawEvent(id="i", ts=T0, hive="h", kind="x.y", data={"a": 1}, reason="unknown kind")
    assert "unknown kind" in present.summary(raw)
