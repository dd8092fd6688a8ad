"""The event catalogue: registry, wire format, decoding rules and subjects."""

from __future__ import annotations

import re
import typing
from datetime import UTC, datetime
from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest

from hyperhive.bus import events
from hyperhive.bus.envelope import SCHEMA_VERSION, Event, RawEvent
from hyperhive.bus.events import (
    ALL_EVENTS,
    KINDS,
    MAX_EVENT_BYTES,
    KnownEvent,
    check_matches_subject,
    decode_event,
    encode_event,
    event_to_dict,
    subject_for,
)
from hyperhive.errors import MalformedEvent

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
SAMPLE_TS = datetime(2026, 1, 31, 12, 0, 0, 123000, tzinfo=UTC)
SAMPLE_STRINGS = {"hive": "h1", "agent": "alice", "source": "c0re", "from_": "alice", "to": "bob"}


# ---------------------------------------------------------------- sample factory


def _fits(value: str, t: mi.StrType) -> bool:
    if t.min_length is not None and len(value) < t.min_length:
        return False
    if t.max_length is not None and len(value) > t.max_length:
        return False
    return t.pattern is None or re.search(t.pattern, value) is not None


def sample_value(t: mi.Type, name: str) -> Any:
    """A value of type `t` that satisfies its constraints (and is not a typical default)."""
    if isinstance(t, mi.StrType):
        wanted = SAMPLE_STRINGS.get(name)
        candidates = [c for c in (wanted, f"{name}-1", "a", "a" * (t.min_length or 1)) if c]
        for candidate in candidates:
            if _fits(candidate, t):
                return candidate
        raise AssertionError(f"no sample string fits {t!r} for {name}")
    if isinstance(t, mi.BoolType):
        return True
    if isinstance(t, (mi.IntType, mi.FloatType)):
        low = t.ge if t.ge is not None else (t.gt + 1 if t.gt is not None else 0)
        high = t.le if t.le is not None else (t.lt - 1 if t.lt is not None else low + 100)
        value = low + 1 if low + 1 <= high else low
        return float(value) + 0.5 if isinstance(t, mi.FloatType) and value + 0.5 <= high else value
    if isinstance(t, mi.DateTimeType):
        return SAMPLE_TS
    if isinstance(t, mi.LiteralType):
        return t.values[0]
    if isinstance(t, mi.UnionType):
        return sample_value(next(m for m in t.types if not isinstance(m, mi.NoneType)), name)
    if isinstance(t, mi.ListType):
        return [sample_value(t.item_type, name)]
    if isinstance(t, mi.DictType):
        return {sample_value(t.key_type, "key"): sample_value(t.value_type, "value")}
    if isinstance(t, mi.AnyType):
        return {"nested": [1, "two", None]}
    if isinstance(t, mi.StructType):
        return build(t.cls, full=True)
    raise AssertionError(f"the sample factory does not know {t!r} (field {name})")


def build(cls: type[Any], *, full: bool = False, **overrides: Any) -> Any:
    """An instance of a struct: required fields filled (all fields with `full`)."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    kwargs: dict[str, Any] = {}
    for f in info.fields:
        if f.name in ("id", "ts"):
            continue
        if f.required or full or f.name in SAMPLE_STRINGS:
            kwargs[f.name] = sample_value(f.type, f.name)
    kwargs.update(overrides)
    return cls(**kwargs)


def sample(kind: str, **overrides: Any) -> Event:
    event = build(KINDS[kind], **overrides)
    assert isinstance(event, Event)
    return event


def wire(event: Event, **changes: Any) -> bytes:
    """The event's JSON with some fields changed (a value of `...` deletes the field)."""
    data = msgspec.json.decode(encode_event(event))
    for key, value in changes.items():
        if value is ...:
            del data[key]
        else:
            data[key] = value
    return msgspec.json.encode(data)


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
    decoded = decode_event(wire(original, v=SCHEMA_VERSION + 1, sandbox="strict"))
    assert isinstance(decoded, events.TurnFinished)
    assert decoded.v == SCHEMA_VERSION + 1
    assert decoded.turn_id == original.turn_id


def test_known_kind_at_a_newer_version_that_no_longer_fits_is_kept_raw() -> None:
    original = sample("turn.finished")
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
