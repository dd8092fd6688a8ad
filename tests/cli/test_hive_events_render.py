"""How `hive-events` lines look: readable, short, escaped, coloured only when asked."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest

from hyperhive.bus import subjects
from hyperhive.bus.records import Record, to_record
from hyperhive.cli import render
from hyperhive.events import (
    AgentCrashed,
    ApprovalRequested,
    MessageSent,
    RecvDelivered,
    TurnFinished,
    encode_event,
)

TS = datetime(2026, 1, 31, 12, 0, 0, 123456, tzinfo=UTC)


def record(
    event: TurnFinished | MessageSent | AgentCrashed | RecvDelivered | ApprovalRequested,
) -> Record:
    if isinstance(event, MessageSent):
        subject = subjects.inbox_subject(event.hive, event.to)
    else:
        subject = subjects.event_subject(event.hive, event.agent, event.kind)
    return to_record(event.hive, 5, subject, encode_event(event))


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    assert render.use_colour(FakeTty(), env={})
    assert not render.use_colour(io.StringIO(), env={})
    assert not render.use_colour(FakeTty(), env={"NO_COLOR": "1"})
    assert not render.use_colour(FakeTty(), env={"NO_COLOR": ""})


def test_a_text_line_is_time_agent_kind_then_summary_fields() -> None:
    e = TurnFinished(
        hive="h",
        agent="alice",
        source="harness",
        ts=TS,
        turn_id="t1",
        duration_ms=5200,
        cost_usd=0.0123,
    )
    line = render.text_line(record(e))
    assert line == (
        "2026-01-31T12:00:00.123Z  alice         turn.finished       "
        "turn_id=t1 duration_ms=5200 cost_usd=0.0123"
    )


def test_the_hive_column_appears_only_when_asked() -> None:
    e = TurnFinished(hive="h", agent="alice", source="harness", ts=TS, turn_id="t1", duration_ms=1)
    assert render.text_line(record(e), show_hive=True).split("  ")[1] == "h"


def test_wire_names_none_fields_lists_and_booleans_in_the_summary() -> None:
    m = MessageSent(
        hive="h",
        agent="alice",
        source="s",
        ts=TS,
        msg_id="m",
        from_="alice",
        to="bob",
        body="two words",
    )
    assert render.summary(m) == 'from=alice to=bob body="two words"'
    crash = AgentCrashed(hive="h", agent="bob", source="c0re", ts=TS, exit_status=137)
    assert render.summary(crash) == "exit_status=137 restart_planned=false"
    d = RecvDelivered(hive="h", agent="bob", source="s", ts=TS, message_ids=["a", "b"])
    assert render.summary(d) == "message_ids=a,b"


def test_long_and_multiline_strings_are_shortened_to_one_line() -> None:
    assert render.shorten("a\nb   c") == "a b c"
    long = render.shorten("x" * 500)
    assert len(long) == render.MAX_VALUE
    assert long.endswith("…")


@pytest.mark.parametrize(
    "hostile",
    [
        "\x1b[31mred",
        "\x1b]0;title\x07",
        "bell\x07",
        "\x9b2J",
        "rtl\u202eevil",
        "nul\x00",
        "del\x7f",
    ],
)
def test_control_characters_are_escaped_never_printed(hostile: str) -> None:
    m = MessageSent(
        hive="h",
        agent="alice",
        source="s",
        ts=TS,
        msg_id="m",
        from_="alice",
        to="bob",
        body=hostile,
    )
    line = render.text_line(record(m), colour=False)
    assert line.isprintable()
    assert "\\" in line


def test_quoting_keeps_backslashes_and_quotes_unambiguous() -> None:
    assert render.format_value('say "hi" \\o/') == '"say \\"hi\\" \\\\o/"'
    assert render.format_value("plain-token") == "plain-token"
    assert render.format_value("") == '""'


def test_colour_wraps_columns_in_ansi_when_on() -> None:
    e = TurnFinished(hive="h", agent="alice", source="harness", ts=TS, turn_id="t1", duration_ms=1)
    coloured = render.text_line(record(e), colour=True)
    assert "\x1b[" in coloured
    assert "\x1b[" not in render.text_line(record(e), colour=False)


def test_an_unknown_kind_and_a_newer_version_say_so() -> None:
    unknown = b'{"id":"X","ts":"2026-01-31T12:00:00Z","hive":"h","kind":"x.y","agent":"bob","source":"s","n":1}'
    line = render.text_line(to_record("h", 1, "hive.h.evt.bob.x.y", unknown))
    assert "x.y (unknown)" in line
    assert 'data="{\\"n\\":1}"' in line
    newer = (
        b'{"id":"X","ts":"2026-01-31T12:00:00Z","hive":"h","kind":"turn.finished","agent":"bob",'
        b'"source":"s","v":2,"turn_id":7}'
    )
    line = render.text_line(to_record("h", 2, "hive.h.evt.bob.turn.finished", newer))
    assert "turn.finished (v2, newer)" in line


def test_a_malformed_message_line_names_seq_subject_and_reason() -> None:
    rec = to_record("h", 42, "hive.h.evt.bob.turn.started", b"\x1b[2Jnot json", stored=TS)
    line = render.text_line(rec)
    assert line.startswith("2026-01-31T12:00:00.123Z  ! malformed")
    assert "seq=42 subject=hive.h.evt.bob.turn.started reason=" in line
    assert "\x1b" not in line
    row = json.loads(render.json_line(rec))
    assert row["seq"] == 42
    assert row["error"]
    assert (row["agent"], row["kind"], row["raw"]) == ("bob", "turn.started", "\x1b[2Jnot json")


def test_json_lines_carry_seq_subject_and_wire_names() -> None:
    m = MessageSent(
        hive="h", agent="alice", source="s", ts=TS, msg_id="m", from_="alice", to="bob", body="x"
    )
    row = json.loads(render.json_line(record(m)))
    assert (row["seq"], row["subject"], row["from"], row["kind"]) == (
        5,
        "hive.h.inbox.bob",
        "alice",
        "message.sent",
    )
    assert row["ts"] == "2026-01-31T12:00:00.123456Z"


def test_printer_stops_at_count_and_flushes_each_line() -> None:
    e = TurnFinished(hive="h", agent="alice", source="harness", ts=TS, turn_id="t1", duration_ms=1)
    out = io.StringIO()
    printer = render.Printer("json", limit=2, out=out)
    assert printer.emit(record(e))
    assert not printer.emit(record(e))
    assert not printer.emit(record(e))
    assert len(out.getvalue().splitlines()) == 2
