"""The event catalogue as one tagged union, and the one decoder built from it.

    event = decode_event(raw)        # a known Event, or RawEvent for unknown kinds
    raw = encode_event(event)        # JSON bytes, readable in `nats sub`
    subject = subject_for(event)     # where it is published

Decoding never crashes a subscriber on a well-formed envelope: an unknown kind or
a newer version that no longer fits comes back as `RawEvent`. Only bytes that are
not even an envelope raise `MalformedEvent`.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import msgspec

from hyperhive.bus import subjects
from hyperhive.bus.catalogue import agent, hive, messaging, operator, turn
from hyperhive.bus.catalogue.agent import (
    AgentCrashed,
    AgentDestroyed,
    AgentKicked,
    AgentLifecycle,
    AgentPaused,
    AgentRebuilt,
    AgentResumed,
    AgentSpawned,
    AgentStarted,
    AgentStatusSet,
    AgentStopped,
    ModelChanged,
)
from hyperhive.bus.catalogue.hive import HiveStarted, HiveStopped, MessageDeadLettered
from hyperhive.bus.catalogue.messaging import (
    MAX_WAIT_SECONDS,
    MessageSent,
    RecvDelivered,
    RecvKicked,
    RecvTimedOut,
    RecvWaiting,
    clamp_wait,
)
from hyperhive.bus.catalogue.operator import (
    MAX_TTL_SECONDS,
    MIN_TTL_SECONDS,
    ApprovalApplied,
    ApprovalApproved,
    ApprovalDecision,
    ApprovalDenied,
    ApprovalExpired,
    ApprovalFailed,
    ApprovalRequested,
    QuestionAnswered,
    QuestionAsked,
    QuestionCancelled,
    QuestionExpired,
)
from hyperhive.bus.catalogue.turn import (
    TurnCancelled,
    TurnFailed,
    TurnFinished,
    TurnStarted,
    TurnTrigger,
    Usage,
)
from hyperhive.bus.envelope import (
    SCHEMA_VERSION,
    SOURCE_BUS,
    SOURCE_C0RE,
    SOURCE_DASHBOARD,
    SOURCE_HARNESS,
    AnyEvent,
    Envelope,
    Event,
    RawEvent,
    operator_source,
    utcnow,
)
from hyperhive.errors import MalformedEvent

ALL_EVENTS: tuple[type[Event], ...] = (
    agent.EVENTS + turn.EVENTS + messaging.EVENTS + operator.EVENTS + hive.EVENTS
)

# The union every decoder is built from. Adding an event = adding it to its
# domain module's EVENTS tuple; tests/bus/test_catalogue.py checks the rest.
KnownEvent: TypeAlias = (
    agent.AgentSpawned
    | agent.AgentStarted
    | agent.AgentStopped
    | agent.AgentPaused
    | agent.AgentResumed
    | agent.AgentDestroyed
    | agent.AgentRebuilt
    | agent.AgentCrashed
    | agent.AgentStatusSet
    | agent.AgentKicked
    | agent.ModelChanged
    | turn.TurnStarted
    | turn.TurnFinished
    | turn.TurnFailed
    | turn.TurnCancelled
    | messaging.MessageSent
    | messaging.RecvWaiting
    | messaging.RecvDelivered
    | messaging.RecvTimedOut
    | messaging.RecvKicked
    | operator.QuestionAsked
    | operator.QuestionAnswered
    | operator.QuestionExpired
    | operator.QuestionCancelled
    | operator.ApprovalRequested
    | operator.ApprovalApproved
    | operator.ApprovalDenied
    | operator.ApprovalExpired
    | operator.ApprovalFailed
    | operator.ApprovalApplied
    | hive.HiveStarted
    | hive.HiveStopped
    | hive.MessageDeadLettered
)

KINDS: dict[str, type[Event]] = {}
for _cls in ALL_EVENTS:
    KINDS[_cls.__struct_config__.tag] = _cls  # type: ignore[index]

MAX_EVENT_BYTES = 256 * 1024

_decoder = msgspec.json.Decoder(KnownEvent)
_envelope_decoder = msgspec.json.Decoder(Envelope)
_dict_decoder = msgspec.json.Decoder(dict[str, Any])
_encoder = msgspec.json.Encoder()


def encode_event(event: Event) -> bytes:
    """JSON bytes of an event; refuses events larger than `MAX_EVENT_BYTES`."""
    data = _encoder.encode(event)
    if len(data) > MAX_EVENT_BYTES:
        raise MalformedEvent(
            f"{event.kind} event is {len(data)} bytes, over the {MAX_EVENT_BYTES}-byte limit"
        )
    return data


def decode_event(data: bytes | str) -> AnyEvent:
    """Decode one event. Unknown kinds and misfitting newer versions become `RawEvent`."""
    if isinstance(data, str):
        data = data.encode()
    if len(data) > MAX_EVENT_BYTES:
        raise MalformedEvent(f"event is {len(data)} bytes, over the {MAX_EVENT_BYTES}-byte limit")
    try:
        event: Event = _decoder.decode(data)
        return event
    except msgspec.DecodeError as exc:
        typed_error = str(exc)
    try:
        env = _envelope_decoder.decode(data)
        body = _dict_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise MalformedEvent(f"not an event envelope: {exc}") from exc
    if env.kind in KINDS and env.v <= SCHEMA_VERSION:
        # A kind we know at a version we know that does not fit: that's bad data.
        raise MalformedEvent(f"invalid {env.kind} event: {typed_error}")
    reason = "unknown kind" if env.kind not in KINDS else f"newer version v{env.v}"
    return RawEvent(
        id=env.id,
        ts=env.ts,
        hive=env.hive,
        kind=env.kind,
        source=env.source,
        agent=env.agent,
        v=env.v,
        data={k: v for k, v in body.items() if k not in _ENVELOPE_KEYS},
        reason=reason,
    )


_ENVELOPE_KEYS = frozenset(Envelope.__struct_fields__)


def subject_for(event: Event) -> str:
    """The subject an event is published on."""
    if isinstance(event, messaging.MessageSent):
        return subjects.inbox_subject(event.hive, event.to)
    return subjects.event_subject(event.hive, event.agent, event.kind)


def check_matches_subject(event: AnyEvent, subject: str) -> None:
    """Raise `MalformedEvent` if an event says something other than its subject does."""
    parsed = subjects.parse_subject(subject)
    if parsed.hive != event.hive:
        raise MalformedEvent(f"event says hive {event.hive!r}, subject says {parsed.hive!r}")
    if parsed.kind != event.kind:
        raise MalformedEvent(f"event says kind {event.kind!r}, subject says {parsed.kind!r}")
    if parsed.inbox:
        to: object
        if isinstance(event, messaging.MessageSent):
            to = event.to
        elif isinstance(event, RawEvent):
            to = event.data.get("to")
        else:
            to = None
        if to != parsed.agent:
            raise MalformedEvent(f"message is to {to!r}, inbox subject is {parsed.agent!r}")
    elif parsed.agent != event.agent:
        raise MalformedEvent(f"event says agent {event.agent!r}, subject says {parsed.agent!r}")


def event_to_dict(event: AnyEvent) -> dict[str, Any]:
    """A plain dict with stable field names (what `-o json` prints)."""
    if isinstance(event, RawEvent):
        d: dict[str, Any] = msgspec.to_builtins(event)
        d.update(d.pop("data"))
        d["raw_reason"] = d.pop("reason")
        return d
    out: dict[str, Any] = {"kind": event.kind}
    out.update(msgspec.to_builtins(event))
    return out


__all__ = [
    "ALL_EVENTS",
    "KINDS",
    "MAX_EVENT_BYTES",
    "MAX_TTL_SECONDS",
    "MAX_WAIT_SECONDS",
    "MIN_TTL_SECONDS",
    "SCHEMA_VERSION",
    "SOURCE_BUS",
    "SOURCE_C0RE",
    "SOURCE_DASHBOARD",
    "SOURCE_HARNESS",
    "AgentCrashed",
    "AgentDestroyed",
    "AgentKicked",
    "AgentLifecycle",
    "AgentPaused",
    "AgentRebuilt",
    "AgentResumed",
    "AgentSpawned",
    "AgentStarted",
    "AgentStatusSet",
    "AgentStopped",
    "AnyEvent",
    "ApprovalApplied",
    "ApprovalApproved",
    "ApprovalDecision",
    "ApprovalDenied",
    "ApprovalExpired",
    "ApprovalFailed",
    "ApprovalRequested",
    "Event",
    "HiveStarted",
    "HiveStopped",
    "KnownEvent",
    "MessageDeadLettered",
    "MessageSent",
    "ModelChanged",
    "QuestionAnswered",
    "QuestionAsked",
    "QuestionCancelled",
    "QuestionExpired",
    "RawEvent",
    "RecvDelivered",
    "RecvKicked",
    "RecvTimedOut",
    "RecvWaiting",
    "TurnCancelled",
    "TurnFailed",
    "TurnFinished",
    "TurnStarted",
    "TurnTrigger",
    "Usage",
    "check_matches_subject",
    "clamp_wait",
    "decode_event",
    "encode_event",
    "event_to_dict",
    "operator_source",
    "subject_for",
    "utcnow",
]
