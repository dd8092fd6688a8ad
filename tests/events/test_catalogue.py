"""The event catalogue: registry, wire format, decoding rules and subjects."""

from __future__ import annotations

import re
import typing

import msgspec
import pytest

from hyperhive import events
from hyperhive.errors import MalformedEvent
from hyperhive.events import (
    ALL_EVENTS,
    KINDS,
    MAX_EVENT_BYTES,
    KnownEvent,
    decode_event,
    encode_event,
    event_to_dict,
)
from hyperhive.events.envelope import SCHEMA_VERSION, Event, RawEvent
from tests.factories import build, sample, wire

# The architecture's minimum catalogue, spelled out so that renaming or dropping a
# kind in code fails here (stored event names outlive class names).
ARCHITECTURE_KINDS = (
    "agent.spawned",
    "agent.started",
    "agent.stopped",
    "agent.paused",
    "agent.resumed",
    "agent.destroyed",
    "agent.rebuilt",
    "agent.crashed",
    "agent.status_set",
    "agent.kicked",
    "model.changed",
    "turn.started",
    "turn.finished",
    "turn.failed",
    "turn.cancelled",
    "recv.waiting",
    "recv.delivered",
    "recv.timed_out",
    "recv.kicked",
    "message.sent",
    "question.asked",
    "question.answered",
    "question.expired",
    "question.cancelled",
    "approval.requested",
    "approval.approved",
    "approval.denied",
    "approval.expired",
    "approval.failed",
    "approval.applied",
)

KIND_SHAPE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")
ENVELOPE_NAMES = frozenset(Event.__struct_fields__)
# ---------------------------------------------------------------- registry


def test_all_events_and_the_known_event_union_hold_the_same_classes() -> None:
    union = typing.get_args(KnownEvent)
    assert len(union) == len(set(union))
    assert len(ALL_EVENTS) == len(set(ALL_EVENTS))
    assert set(union) == set(ALL_EVENTS)


@pytest.mark.parametrize("cls", ALL_EVENTS, ids=lambda c: c.__name__)
def test_each_event_has_an_explicit_dotted_lowercase_tag(cls: type[Event]) -> None:
    tag = cls.__struct_config__.tag
    assert isinstance(tag, str)
    assert tag != cls.__name__, "tag defaulted to the class name: give tag= explicitly"
    assert KIND_SHAPE.fullmatch(tag), tag
    assert cls.__struct_config__.tag_field == "kind"


def test_event_tags_are_unique() -> None:
    tags = [cls.__struct_config__.tag for cls in ALL_EVENTS]
    assert len(tags) == len(set(tags))
    assert set(KINDS) == set(tags)


@pytest.mark.parametrize("cls", ALL_EVENTS, ids=lambda c: c.__name__)
def test_each_event_has_a_one_line_docstring(cls: type[Event]) -> None:
    doc = cls.__dict__.get("__doc__")
    assert doc, f"{cls.__name__} has no docstring of its own"
    assert "\n" not in doc.strip(), f"{cls.__name__}'s docstring is more than one line"
    assert doc.strip().endswith(".")


def test_the_catalogue_covers_the_architectures_minimum() -> None:
    missing = [k for k in ARCHITECTURE_KINDS if k not in KINDS]
    assert not missing, f"kinds the architecture requires are missing: {missing}"


# ---------------------------------------------------------------- wire format


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("full", [False, True], ids=["required", "all-fields"])
def test_every_kind_round_trips_through_json_unchanged(kind: str, full: bool) -> None:
    event = build(KINDS[kind], full=full)
    decoded = decode_event(encode_event(event))
    assert type(decoded) is KINDS[kind]
    assert decoded == event


def test_encoded_event_carries_its_kind_and_wire_names() -> None:
    data = msgspec.json.decode(encode_event(sample("message.sent")))
    assert data["kind"] == "message.sent"
    assert data["from"] == "alice"
    assert "from_" not in data


def test_event_to_dict_has_stable_wire_field_names() -> None:
    d = event_to_dict(sample("message.sent", body="hi"))
    assert set(d) == {
        "kind",
        "id",
        "ts",
        "hive",
        "agent",
        "source",
        "v",
        "correlation_id",
        "causation_id",
        "msg_id",
        "from",
        "to",
        "body",
        "system_kind",
        "ref",
    }
    assert (d["kind"], d["from"], d["to"], d["body"]) == ("message.sent", "alice", "bob", "hi")


def test_event_to_dict_flattens_a_raw_event_and_keeps_why_it_is_raw() -> None:
    raw = decode_event(wire(sample("turn.started"), kind="widget.frobbed", size=3))
    d = event_to_dict(raw)
    assert d["kind"] == "widget.frobbed"
    assert d["size"] == 3
    assert d["raw_reason"] == "unknown kind"
    assert "data" not in d


def test_encode_event_refuses_an_event_over_the_size_limit() -> None:
    event = sample("message.sent", body="x" * MAX_EVENT_BYTES)
    with pytest.raises(MalformedEvent, match="limit"):
        encode_event(event)


def test_encode_event_accepts_an_event_just_under_the_size_limit() -> None:
    overhead = len(encode_event(sample("message.sent", body="")))
    event = sample("message.sent", body="x" * (MAX_EVENT_BYTES - overhead))
    assert len(encode_event(event)) == MAX_EVENT_BYTES


# ---------------------------------------------------------------- decoding rules


def test_unknown_kind_decodes_to_raw_event_with_its_fields_in_data() -> None:
    original = sample("turn.started")
    raw = decode_event(
        wire(
            original,
            kind="widget.frobbed",
            turn_id=...,
            model=...,
            trigger=...,
            size=3,
            nested={"a": [1, None]},
        )
    )
    assert isinstance(raw, RawEvent)
    assert raw.kind == "widget.frobbed"
    assert raw.reason == "unknown kind"
    assert (raw.id, raw.ts, raw.hive, raw.agent) == (
        original.id,
        original.ts,
        original.hive,
        original.agent,
    )
    assert raw.data == {"size": 3, "nested": {"a": [1, None]}}


def test_known_kind_at_a_newer_version_with_an_extra_field_still_decodes() -> None:
    original = sample("turn.finished", full=True)
    assert isinstance(original, events.TurnFinished)
    decoded = decode_event(wire(original, v=SCHEMA_VERSION + 1, sandbox="strict"))
    assert isinstance(decoded, events.TurnFinished)
    assert decoded.v == SCHEMA_VERSION + 1
    assert decoded.turn_id == original.turn_id


def test_known_kind_at_a_newer_version_that_no_longer_fits_is_kept_raw() -> None:
    original = sample("turn.finished")
    assert isinstance(original, events.TurnFinished)
    data = wire(original, v=SCHEMA_VERSION + 1, duration_ms=..., took="3s")
    decoded = decode_event(data)
    assert isinstance(decoded, RawEvent)
    assert decoded.kind == "turn.finished"
    assert decoded.reason == f"newer version v{SCHEMA_VERSION + 1}"
    on_wire = msgspec.json.decode(data)
    assert decoded.data == {k: v for k, v in on_wire.items() if k not in ENVELOPE_NAMES | {"kind"}}
    assert decoded.data["took"] == "3s"
    assert decoded.data["turn_id"] == original.turn_id


def test_known_kind_at_the_current_version_missing_a_field_is_malformed() -> None:
    with pytest.raises(MalformedEvent, match=r"turn\.finished"):
        decode_event(wire(sample("turn.finished"), duration_ms=...))


def test_known_kind_breaking_a_constraint_is_malformed() -> None:
    with pytest.raises(MalformedEvent, match="wait_seconds"):
        decode_event(wire(sample("recv.waiting"), wait_seconds=181))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"{",
        b"[1, 2]",
        b'"message.sent"',
        b"null",
        b"42",
        b"{}",
        b'{"kind": "turn.finished"}',
        b'{"id": "x", "ts": "yesterday", "hive": "h1", "kind": "widget.frobbed"}',
        b'{"id": "x", "ts": "2026-01-31T12:00:00Z", "hive": "h1", "kind": 7}',
    ],
    ids=[
        "empty",
        "text",
        "truncated",
        "array",
        "string",
        "null",
        "number",
        "empty-object",
        "no-envelope",
        "bad-ts",
        "kind-not-string",
    ],
)
def test_bytes_that_are_not_an_event_envelope_are_malformed(data: bytes) -> None:
    with pytest.raises(MalformedEvent):
        decode_event(data)


def test_oversize_bytes_are_malformed_before_parsing() -> None:
    event = sample("turn.started")
    data = wire(event).replace(b"{", b"{" + b" " * MAX_EVENT_BYTES, 1)
    with pytest.raises(MalformedEvent, match="limit"):
        decode_event(data)


def test_an_oversize_event_given_as_text_is_measured_in_bytes() -> None:
    # 200k two-byte characters: under the limit in characters, far over it in bytes.
    text = wire(sample("turn.started"), kind="widget.frobbed", blob="\u00e9" * 200_000).decode()
    assert len(text) < MAX_EVENT_BYTES < len(text.encode())
    with pytest.raises(MalformedEvent, match="limit"):
        decode_event(text)
