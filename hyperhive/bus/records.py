"""One stream message as every reader sees it: the one decode-and-check of a message.

    event = decode_message(subject, data)   # an event that agrees with its subject,
                                            # or MalformedEvent saying why not
    rec = to_record(hive, seq, subject, data)

The event log, the tail reader, live subscriptions and the handler loop all go
through `decode_message`, so they agree on what a malformed message is. A
`Record` never raises: a message that is not a valid event for its subject is a
record with `error` set, shown and stored, and reading goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hyperhive import events as ev
from hyperhive.bus import subjects
from hyperhive.bus.filters import EventFilter
from hyperhive.errors import HyperhiveError, InvalidSubject, MalformedEvent
from hyperhive.names import ALL_HIVES
from hyperhive.timefmt import storage_ts


def subject_for(event: ev.Event) -> str:
    """The subject an event is published on."""
    if isinstance(event, ev.MessageSent):
        return subjects.inbox_subject(event.hive, event.to)
    return subjects.event_subject(event.hive, event.agent, event.kind)


def check_matches_subject(event: ev.AnyEvent, subject: str) -> None:
    """Raise `MalformedEvent` if an event says something other than its subject does."""
    try:
        parsed = subjects.parse_subject(subject)
    except InvalidSubject as exc:
        raise MalformedEvent(str(exc)) from None
    if parsed.hive != event.hive:
        raise MalformedEvent(f"event says hive {event.hive!r}, subject says {parsed.hive!r}")
    if parsed.kind != event.kind:
        raise MalformedEvent(f"event says kind {event.kind!r}, subject says {parsed.kind!r}")
    if parsed.inbox:
        to: object
        if isinstance(event, ev.MessageSent):
            to = event.to
        elif isinstance(event, ev.RawEvent):
            to = event.data.get("to")
        else:
            to = None
        if to != parsed.agent:
            raise MalformedEvent(f"message is to {to!r}, inbox subject is {parsed.agent!r}")
    elif parsed.agent != event.agent:
        raise MalformedEvent(f"event says agent {event.agent!r}, subject says {parsed.agent!r}")


def decode_message(subject: str, data: bytes) -> ev.AnyEvent:
    """Decode a stream message and check it against its subject; `MalformedEvent` if not.

    Never raises anything else: whatever a producer put on the wire, a reader
    gets an event or a reason.
    """
    try:
        event = ev.decode_event(data)
        check_matches_subject(event, subject)
    except MalformedEvent:
        raise
    except HyperhiveError as exc:
        raise MalformedEvent(str(exc)) from None
    except Exception as exc:  # a decoder bug must not take a reader down: say so, go on
        raise MalformedEvent(f"undecodable event ({type(exc).__name__}: {exc})") from None
    return event


@dataclass(frozen=True, slots=True)
class Record:
    """One stream message (or log row) as a reader sees it: an event, or why it is not one."""

    hive: str
    seq: int
    subject: str
    data: bytes
    event: ev.AnyEvent | None
    error: str | None = None  # malformed (event is None), or a duplicate row in the log
    stored: datetime | None = None  # when the stream stored it (None for log rows)

    @property
    def malformed(self) -> bool:
        return self.event is None

    @property
    def ts(self) -> datetime | None:
        return self.event.ts if self.event is not None else self.stored

    @property
    def agent(self) -> str | None:
        if self.event is not None:
            return self.event.agent
        return parsed_subject(self.subject)[0]

    @property
    def kind(self) -> str | None:
        if self.event is not None:
            return self.event.kind
        return parsed_subject(self.subject)[1]

    def sort_key(self) -> tuple[str, str, int]:
        """Merge order across hives: (ts, id), then sequence."""
        ts = storage_ts(self.ts) if self.ts is not None else ""
        return (ts, self.event.id if self.event is not None else "", self.seq)


def parsed_subject(subject: str) -> tuple[str | None, str | None]:
    """(agent, kind) as a subject says them, or (None, None) for a subject not ours."""
    try:
        p = subjects.parse_subject(subject)
    except InvalidSubject:
        return None, None
    return p.agent, p.kind


def to_record(
    hive: str, seq: int, subject: str, data: bytes, stored: datetime | None = None
) -> Record:
    """Decode one message; anything that is not a valid event for its subject is malformed."""
    try:
        event = decode_message(subject, data)
    except MalformedEvent as exc:
        return Record(hive, seq, subject, data, None, str(exc), stored)
    return Record(hive, seq, subject, data, event, None, stored)


def record_matches(flt: EventFilter, rec: Record) -> bool:
    """The exact filter check. A malformed message is judged by what its subject says."""
    if rec.event is not None:
        e = rec.event
        return flt.matches(e.hive, e.agent, e.kind, related=e.related_agents())
    agent, kind = parsed_subject(rec.subject)
    if kind is None:  # not even a parsable subject: only an unfiltered reader sees it
        return not flt.agents and not flt.kinds and flt.hive in (ALL_HIVES, rec.hive)
    return flt.matches(rec.hive, agent, kind)
