"""The codec: deterministic, and nothing but `MalformedEvent` for any bad input."""

from __future__ import annotations

import msgspec
import pytest

from hyperhive.errors import MalformedEvent
from hyperhive.events import KINDS, decode_event, encode_event
from tests.factories import sample, wire


@pytest.mark.parametrize("field", ["id", "ts"])
@pytest.mark.parametrize("kind", ["turn.started", "future.thing"])
def test_an_event_without_id_or_ts_is_malformed_not_given_a_fresh_one(
    kind: str, field: str
) -> None:
    data = wire(sample("turn.started"), kind=kind, **{field: ...})
    with pytest.raises(MalformedEvent, match=f"`{field}`"):
        decode_event(data)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_decoding_the_same_bytes_twice_gives_the_same_event(kind: str) -> None:
    data = encode_event(sample(kind))
    assert decode_event(data) == decode_event(data)


@pytest.mark.parametrize(
    "ts", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2026-01-31T12:00:00"]
)
@pytest.mark.parametrize("kind", ["turn.started", "future.thing"])
def test_a_ts_with_no_utc_equivalent_or_no_zone_is_malformed(kind: str, ts: str) -> None:
    with pytest.raises(MalformedEvent, match="ts"):
        decode_event(wire(sample("turn.started"), kind=kind, ts=ts))


def test_a_ts_in_another_zone_is_kept_and_compares_in_utc() -> None:
    event = decode_event(wire(sample("turn.started"), ts="2026-01-31T14:00:00+02:00"))
    assert event.ts.utcoffset() is not None
    assert event.ts == decode_event(wire(sample("turn.started"), ts="2026-01-31T12:00:00Z")).ts


@pytest.mark.parametrize("depth", [100, 5000, 50_000])
def test_deep_nesting_is_malformed_not_a_recursion_error(depth: int) -> None:
    for kind in ("turn.started", "future.thing"):
        base = wire(sample("turn.started"), kind=kind)
        data = base[:-1] + b',"x":' + b"[" * depth + b"]" * depth + b"}"
        outcome = _decode_or_reason(data)
        assert outcome in (kind, "nested too deeply to decode"), outcome


def _decode_or_reason(data: bytes) -> str:
    try:
        return decode_event(data).kind
    except MalformedEvent as exc:
        return "nested too deeply to decode" if "nested too deeply" in str(exc) else str(exc)


def test_an_event_made_in_code_gets_an_id_and_a_time() -> None:
    a, b = sample("turn.started"), sample("turn.started")
    assert a.id
    assert a.id != b.id
    assert a.ts.utcoffset() is not None
    assert msgspec.json.decode(encode_event(a))["id"] == a.id
