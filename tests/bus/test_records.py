"""Records: what a message's subject says, checked against what its event says."""

from __future__ import annotations

import pytest

from hyperhive.bus.records import check_matches_subject, subject_for
from hyperhive.errors import MalformedEvent
from hyperhive.events import KINDS, decode_event, encode_event
from hyperhive.events.envelope import SCHEMA_VERSION, RawEvent
from tests.factories import sample, wire

# ---------------------------------------------------------------- subjects


def test_message_sent_goes_on_the_recipients_inbox() -> None:
    assert subject_for(sample("message.sent", to="bob")) == "hive.h1.inbox.bob"


@pytest.mark.parametrize("kind", sorted(set(KINDS) - {"message.sent"}))
def test_other_kinds_go_on_the_agents_event_subject(kind: str) -> None:
    assert subject_for(sample(kind, agent="alice")) == f"hive.h1.evt.alice.{kind}"
    assert subject_for(sample(kind, agent=None)) == f"hive.h1.evt._.{kind}"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_matches_the_subject_it_is_published_on(kind: str) -> None:
    event = sample(kind)
    check_matches_subject(event, subject_for(event))
    check_matches_subject(decode_event(encode_event(event)), subject_for(event))


@pytest.mark.parametrize(
    ("subject", "what"),
    [
        ("hive.h2.evt.alice.turn.finished", "hive"),
        ("hive.h1.evt.bob.turn.finished", "agent"),
        ("hive.h1.evt._.turn.finished", "agent"),
        ("hive.h1.evt.alice.turn.failed", "kind"),
        ("hive.h1.inbox.alice", "kind"),
    ],
)
def test_check_matches_subject_refuses_a_mismatched_event(subject: str, what: str) -> None:
    with pytest.raises(MalformedEvent, match=what):
        check_matches_subject(sample("turn.finished"), subject)


def test_check_matches_subject_refuses_a_message_on_another_agents_inbox() -> None:
    message = sample("message.sent", to="bob")
    with pytest.raises(MalformedEvent, match="to"):
        check_matches_subject(message, "hive.h1.inbox.carol")
    with pytest.raises(MalformedEvent, match="kind"):
        check_matches_subject(message, "hive.h1.evt.alice.message.sent.x")


def test_check_matches_subject_refuses_a_raw_event_on_the_wrong_subject() -> None:
    raw = decode_event(wire(sample("turn.started"), kind="widget.frobbed"))
    check_matches_subject(raw, "hive.h1.evt.alice.widget.frobbed")
    with pytest.raises(MalformedEvent, match="kind"):
        check_matches_subject(raw, "hive.h1.evt.alice.widget.other")


def test_a_newer_message_kept_raw_still_matches_its_inbox_subject() -> None:
    # A newer hyperhive renamed `body`: this build keeps the message raw, and must not
    # then refuse it as if it were on the wrong inbox (it would be dead-lettered).
    message = sample("message.sent", to="bob")
    raw = decode_event(wire(message, v=SCHEMA_VERSION + 1, body=..., text="hi"))
    assert isinstance(raw, RawEvent)
    check_matches_subject(raw, "hive.h1.inbox.bob")
    with pytest.raises(MalformedEvent):
        check_matches_subject(raw, "hive.h1.inbox.carol")
