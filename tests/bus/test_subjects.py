"""Names, subjects and filters: hostile names never get into a subject or a path."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from hyperhive import names
from hyperhive.bus.filters import EventFilter, subject_covers
from hyperhive.bus.subjects import (
    ParsedSubject,
    command_subject,
    event_subject,
    harness_command_subject,
    inbox_subject,
    parse_subject,
    stream_name,
    stream_subjects,
)
from hyperhive.errors import InvalidName, InvalidSubject
from hyperhive.events import KINDS
from hyperhive.names import check_agent, check_hive

HOSTILE = [
    "..",
    ".",
    "/",
    "a/b",
    "*",
    ">",
    "a.b",
    "A",
    "Alice",
    "_",
    "",
    "a" * 33,
    "-a",
    "é",
    "alicé",
    "\u0430lice",  # Cyrillic a
    "a b",
    " alice",
    "alice ",
    "alice\n",
    "al\nice",
    "\nalice",
    "alice\t",
    "alice\x00",
    "../etc",
    "..\\etc",
    "~",
    "$HOME",
]
VALID_AGENTS = ["alice", "a", "bob-2", "manager", "a" * 31, "x0-"]
VALID_HIVES = ["default", "my-hive", "0", "h1", "9lives", "a" * 32]

BUILDERS_BY_AGENT = [
    pytest.param(lambda a: event_subject("h1", a, "turn.finished"), id="event_subject"),
    pytest.param(lambda a: inbox_subject("h1", a), id="inbox_subject"),
    pytest.param(lambda a: command_subject("h1", a, "spawn"), id="command_subject"),
    pytest.param(lambda a: harness_command_subject("h1", a, "kick"), id="harness_command_subject"),
]
BUILDERS_BY_HIVE = [
    pytest.param(lambda h: event_subject(h, "alice", "turn.finished"), id="event_subject"),
    pytest.param(lambda h: event_subject(h, None, "hive.started"), id="event_subject-hive-wide"),
    pytest.param(lambda h: inbox_subject(h, "alice"), id="inbox_subject"),
    pytest.param(lambda h: command_subject(h, "_operator", "spawn"), id="command_subject"),
    pytest.param(lambda h: harness_command_subject(h, "alice", "kick"), id="harness_command"),
    pytest.param(stream_name, id="stream_name"),
    pytest.param(stream_subjects, id="stream_subjects"),
]


def _ids(values: list[str]) -> list[str]:
    return [repr(v) if len(v) <= 40 else repr(v[:37] + "...") for v in values]


# ---------------------------------------------------------------- names


@pytest.mark.parametrize("name", HOSTILE, ids=_ids(HOSTILE))
def test_check_agent_refuses_a_hostile_name(name: str) -> None:
    with pytest.raises(InvalidName, match="invalid agent name"):
        check_agent(name)


@pytest.mark.parametrize("name", HOSTILE, ids=_ids(HOSTILE))
def test_check_hive_refuses_a_hostile_name(name: str) -> None:
    with pytest.raises(InvalidName, match="invalid hive name"):
        check_hive(name)


@pytest.mark.parametrize("name", VALID_AGENTS)
def test_check_agent_accepts_a_valid_name(name: str) -> None:
    assert check_agent(name) == name


@pytest.mark.parametrize("name", VALID_HIVES)
def test_check_hive_accepts_a_valid_name(name: str) -> None:
    assert check_hive(name) == name


def test_agent_names_are_at_most_31_chars_and_hive_names_32() -> None:
    with pytest.raises(InvalidName):
        check_agent("a" * 32)
    assert check_hive("a" * 32)


def test_an_agent_name_must_start_with_a_letter() -> None:
    with pytest.raises(InvalidName):
        check_agent("1a")
    assert check_hive("1a")


def test_a_refusal_message_stays_short_and_on_one_line() -> None:
    with pytest.raises(InvalidName) as info:
        check_agent("x\n" * 500)
    message = str(info.value)
    assert "\n" not in message
    assert len(message) < 200


@pytest.mark.parametrize("build", BUILDERS_BY_AGENT)
@pytest.mark.parametrize("name", HOSTILE, ids=_ids(HOSTILE))
def test_every_subject_builder_refuses_a_hostile_agent(
    name: str, build: Callable[[str], str]
) -> None:
    with pytest.raises(InvalidName):
        build(name)


@pytest.mark.parametrize("build", BUILDERS_BY_HIVE)
@pytest.mark.parametrize("name", HOSTILE, ids=_ids(HOSTILE))
def test_every_subject_builder_refuses_a_hostile_hive(
    name: str, build: Callable[[str], object]
) -> None:
    with pytest.raises(InvalidName):
        build(name)


@pytest.mark.parametrize(
    "kind",
    ["turn", "turn.*", "turn.>", "turn..finished", "Turn.finished", "turn.finished\n", "", "."],
    ids=repr,
)
def test_event_subject_refuses_a_hostile_kind(kind: str) -> None:
    with pytest.raises(InvalidName):
        event_subject("h1", "alice", kind)


@pytest.mark.parametrize("verb", ["", "Spawn", "spawn.now", "*", ">", "spawn\n", "a" * 49])
def test_command_subjects_refuse_a_hostile_verb(verb: str) -> None:
    with pytest.raises(InvalidName):
        command_subject("h1", "_operator", verb)
    with pytest.raises(InvalidName):
        harness_command_subject("h1", "alice", verb)


def test_subject_builders_accept_valid_names() -> None:
    assert event_subject("h1", "alice", "turn.finished") == "hive.h1.evt.alice.turn.finished"
    assert event_subject("h1", None, "hive.started") == "hive.h1.evt._.hive.started"
    assert inbox_subject("my-hive", "bob-2") == "hive.my-hive.inbox.bob-2"
    assert command_subject("h1", "_operator", "spawn") == "hive.h1.cmd.c0re._operator.spawn"
    assert command_subject("h1", "alice", "send") == "hive.h1.cmd.c0re.alice.send"
    assert (
        harness_command_subject("h1", "alice", "cancel_turn")
        == "hive.h1.cmd.harness.alice.cancel_turn"
    )
    assert stream_subjects("h1") == ["hive.h1.evt.>", "hive.h1.inbox.>"]


def test_only_the_operator_may_use_an_underscore_caller() -> None:
    with pytest.raises(InvalidName):
        command_subject("h1", "_", "spawn")
    with pytest.raises(InvalidName):
        command_subject("h1", "_operators", "spawn")


def test_stream_name_is_the_upper_cased_hive_with_underscores() -> None:
    assert stream_name("my-hive") == "HIVE_MY_HIVE"
    assert stream_name("default") == "HIVE_DEFAULT"


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize("hive", ["h1", "my-hive"])
@pytest.mark.parametrize("agent", ["alice", "a" * 31, None])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_parse_subject_round_trips_event_subjects(hive: str, agent: str | None, kind: str) -> None:
    parsed = parse_subject(event_subject(hive, agent, kind))
    assert parsed == ParsedSubject(hive=hive, agent=agent, kind=kind, inbox=False)


@pytest.mark.parametrize("agent", VALID_AGENTS)
def test_parse_subject_round_trips_inbox_subjects(agent: str) -> None:
    parsed = parse_subject(inbox_subject("h1", agent))
    assert parsed == ParsedSubject(hive="h1", agent=agent, kind="message.sent", inbox=True)


FOREIGN = [
    "",
    "foo.bar",
    "hive",
    "hive.h1",
    "hive.h1.evt",
    "hive.h1.evt.alice",
    "hive.h1.evt.alice.turn",
    "hive.h1.inbox",
    "hive.h1.inbox.alice.extra",
    "hive.h1.inbox._",
    "hive.h1.other.alice.turn.finished",
    "hive.H1.evt.alice.turn.finished",
    "hive.h1.evt.Alice.turn.finished",
    "hive.h1.evt.*.turn.finished",
    "hive.h1.evt.>",
    "hive.h1.evt.alice.turn.*",
    "hive.h1.evt.alice.turn..finished",
    "hive.h1.evt.alice.turn.finished\n",
    "hive.h1.inbox.alice\n",
    "hive..evt.alice.turn.finished",
    "nothive.h1.evt.alice.turn.finished",
    command_subject("h1", "_operator", "spawn"),
    command_subject("h1", "alice", "send"),
    harness_command_subject("h1", "alice", "kick"),
]


@pytest.mark.parametrize("subject", FOREIGN, ids=_ids(FOREIGN))
def test_parse_subject_refuses_a_foreign_subject(subject: str) -> None:
    with pytest.raises(InvalidSubject):
        parse_subject(subject)


# ---------------------------------------------------------------- filters


def test_kind_glob_is_pushed_down_to_the_subject() -> None:
    assert EventFilter(hive="h", kinds=("turn.*",)).subjects() == ["hive.h.evt.*.turn.>"]


def test_exact_kind_is_pushed_down_to_the_subject() -> None:
    f = EventFilter(hive="h", kinds=("turn.finished",))
    assert f.subjects() == ["hive.h.evt.*.turn.finished"]


def test_agent_is_pushed_down_and_inboxes_are_read_for_its_messages() -> None:
    f = EventFilter(hive="h", agents=("alice",))
    assert f.subjects() == ["hive.h.evt.alice.>", "hive.h.inbox.>"]


def test_no_filter_reads_the_whole_hive() -> None:
    # The stream's own subjects: a message on an odd subject (`hive.h.evt.x`) is
    # stored, so an unfiltered reader must see it too.
    assert EventFilter(hive="h").subjects() == ["hive.h.evt.>", "hive.h.inbox.>"]


def test_all_hives_use_a_wildcard_hive_token() -> None:
    assert EventFilter(hive="*", kinds=("turn.*",)).subjects() == ["hive.*.evt.*.turn.>"]


def test_a_glob_inside_a_word_widens_to_every_kind() -> None:
    assert EventFilter(hive="h", kinds=("turn.fin*",)).subjects() == ["hive.h.evt.*.>"]


def test_a_widened_glob_swallows_the_narrower_filters() -> None:
    f = EventFilter(hive="h", kinds=("turn.fin*", "turn.*", "agent.started"))
    assert f.subjects() == ["hive.h.evt.*.>"]


def test_message_kinds_read_the_inboxes() -> None:
    f = EventFilter(hive="h", kinds=("message.*",))
    assert "hive.h.inbox.>" in f.subjects()
    assert "hive.h.inbox.>" not in EventFilter(hive="h", kinds=("turn.*",)).subjects()


FILTER_AGENTS: list[tuple[str, ...]] = [(), ("alice",), ("alice", "bob"), ("_",), ("alice", "_")]
FILTER_KINDS: list[tuple[str, ...]] = [
    (),
    ("*",),
    ("turn.*",),
    ("turn.finished",),
    ("turn.fin*",),
    ("turn.fin*", "turn.*"),
    ("turn.finished", "turn.*"),
    ("turn.*", "turn.finished"),
    ("turn.*", "*.finished"),
    ("message.sent",),
    ("message.*", "turn.*"),
    ("turn.*", "turn.?ailed", "*"),
    ("recv.*", "recv.waiting", "agent.*"),
]
FILTERS = [
    EventFilter(hive=h, agents=a, kinds=k)
    for h, a, k in itertools.product(("h", "*"), FILTER_AGENTS, FILTER_KINDS)
]


@pytest.mark.parametrize("f", FILTERS, ids=repr)
def test_filter_subjects_never_overlap(f: EventFilter) -> None:
    patterns = f.subjects()
    assert len(patterns) == len(set(patterns))
    for wide, narrow in itertools.permutations(patterns, 2):
        assert not subject_covers(wide, narrow), f"{wide} covers {narrow}"


@pytest.mark.parametrize("f", FILTERS, ids=repr)
def test_filter_subjects_cover_every_event_the_filter_matches(f: EventFilter) -> None:
    """Pushed-down subjects only make reading cheaper: they never drop a wanted event."""
    patterns = f.subjects()
    agents = ("alice", "bob", "carol", None)
    for kind in [*KINDS, "widget.frobbed"]:
        for agent in agents:
            if kind == "message.sent":
                for to in ("alice", "bob", "carol"):
                    sender = agent or "dave"
                    subject = inbox_subject("h", to)
                    if f.matches("h", sender, kind, (sender, to)):
                        assert any(subject_covers(p, subject) for p in patterns), subject
            else:
                subject = event_subject("h", agent, kind)
                if f.matches("h", agent, kind):
                    assert any(subject_covers(p, subject) for p in patterns), subject


def test_subject_covers_follows_nats_wildcards() -> None:
    assert subject_covers("hive.h.evt.*.turn.*", "hive.h.evt.alice.turn.finished")
    assert subject_covers("hive.h.evt.>", "hive.h.evt.alice.turn.finished")
    assert not subject_covers("hive.h.evt.>", "hive.h.evt")
    assert not subject_covers("hive.h.evt.*.turn.*", "hive.h.evt.alice.agent.started")
    assert not subject_covers("hive.h.evt.*.turn", "hive.h.evt.alice.turn.finished")


def test_filter_matches_agents_exactly() -> None:
    f = EventFilter(hive="h", agents=("alice",))
    assert f.matches("h", "alice", "turn.finished")
    assert not f.matches("h", "bob", "turn.finished")
    assert not f.matches("h", "alicia", "turn.finished")
    assert not f.matches("h", None, "hive.started")


def test_filter_matches_messages_by_sender_or_recipient() -> None:
    f = EventFilter(hive="h", agents=("alice",))
    assert f.matches("h", "bob", "message.sent", ("bob", "alice"))
    assert f.matches("h", "alice", "message.sent", ("alice", "bob"))
    assert not f.matches("h", "bob", "message.sent", ("bob", "carol"))


def test_filter_matches_hive_wide_events_with_underscore() -> None:
    f = EventFilter(hive="h", agents=("_",))
    assert f.matches("h", None, "hive.started")
    assert not f.matches("h", "alice", "turn.finished")


def test_filter_matches_kind_globs_exactly() -> None:
    f = EventFilter(hive="h", kinds=("turn.fin*",))
    assert f.matches("h", "alice", "turn.finished")
    assert not f.matches("h", "alice", "turn.failed")
    g = EventFilter(hive="h", kinds=("turn.*",))
    assert g.matches("h", "alice", "turn.failed")
    assert not g.matches("h", "alice", "turn")
    assert not g.matches("h", "alice", "agent.started")
    assert not g.matches("h", "alice", "return.failed")


def test_filter_matches_one_hive_or_every_hive() -> None:
    assert not EventFilter(hive="h").matches("other", "alice", "turn.finished")
    assert EventFilter(hive="h").matches("h", "alice", "turn.finished")
    assert EventFilter(hive="*").matches("other", "alice", "turn.finished")


@pytest.mark.parametrize(
    "pattern",
    ["", "Turn.*", "turn finished", "turn/x", "turn.>", "a" * 65, "turn.*\n", "turn;rm", "é.*"],
    ids=repr,
)
def test_filter_refuses_an_invalid_kind_pattern(pattern: str) -> None:
    with pytest.raises(InvalidName):
        EventFilter(hive="h", kinds=(pattern,))


@pytest.mark.parametrize("agent", ["*", ">", "..", "A", "alice\n"], ids=repr)
def test_filter_refuses_an_invalid_agent(agent: str) -> None:
    with pytest.raises(InvalidName):
        EventFilter(hive="h", agents=(agent,))


@pytest.mark.parametrize("hive", ["", ">", "H", "h.x", "**"], ids=repr)
def test_filter_refuses_an_invalid_hive(hive: str) -> None:
    with pytest.raises(InvalidName):
        EventFilter(hive=hive)


def test_every_name_checker_refuses_with_the_same_typed_error() -> None:
    for check in (names.check_agent, names.check_hive, names.check_kind):
        with pytest.raises(InvalidName):
            check("..")
