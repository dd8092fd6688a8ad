"""Events to bytes and back: the one decoder, built once from the registry.

    event = decode_event(raw)        # a known Event, or RawEvent for unknown kinds
    raw = encode_event(event)        # JSON bytes, readable in `nats sub`

Decoding never crashes a subscriber: an unknown kind or a newer version that no
longer fits comes back as `RawEvent`, and anything else that is wrong with the
bytes — not JSON, not an envelope, no id or ts, a ts with no UTC equivalent,
nesting too deep to decode, too large — raises `MalformedEvent`, and nothing
else. Decoding is deterministic: the same bytes give the same event every time.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from hyperhive.errors import MalformedEvent
from hyperhive.events.envelope import (
    ENVELOPE_KEYS,
    SCHEMA_VERSION,
    AnyEvent,
    Envelope,
    Event,
    RawEvent,
    check_ts,
    decoding,
)
from hyperhive.events.registry import KINDS, KnownEvent

MAX_EVENT_BYTES = 256 * 1024
MAX_NESTING = 64  # arrays and objects inside each other: events need a handful

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_INNERMOST = re.compile(rb"\[[^\[\]{}]*\]|\{[^\[\]{}]*\}")
_BRACKETS = re.compile(rb"[\[\]{}]")
_NOT_BRACKETS = re.compile(rb"[^\[\]{}]+")
_OPEN_RUN = re.compile(rb"[\[{]{%d}" % (MAX_NESTING + 1))


def too_deep(data: bytes, limit: int = MAX_NESTING) -> bool:
    """True if `data` nests arrays/objects more than `limit` deep (strings ignored).

    Decided by the bytes alone, never by how deep the caller's stack happens to
    be (Python's recursion limit), so every reader judges a message the same.
    Cheap for ordinary events (a count of brackets); an exact check, in C-speed
    regex passes, only for the rare message with many brackets.
    """
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    text = _NOT_BRACKETS.sub(b"", _STRING.sub(b"", data))
    if limit == MAX_NESTING and _OPEN_RUN.search(text):  # the usual shape: [[[[...]]]]
        return True
    for _ in range(limit):
        text, n = _INNERMOST.subn(b"", text)
        if not n:
            break
    return _BRACKETS.search(text) is not None


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
    if too_deep(data):
        raise MalformedEvent(f"event is nested too deeply to decode (over {MAX_NESTING} levels)")
    decoding.active = True
    try:
        event: Event = _decoder.decode(data)
        return event
    except msgspec.DecodeError as exc:
        typed_error = str(exc)
    except RecursionError:
        raise MalformedEvent("event is nested too deeply to decode") from None
    finally:
        decoding.active = False
    return _decode_raw(data, typed_error)


def _decode_raw(data: bytes, typed_error: str) -> RawEvent:
    try:
        env = _envelope_decoder.decode(data)
        body = _dict_decoder.decode(data)
        check_ts(env.ts)
    except msgspec.DecodeError as exc:
        raise MalformedEvent(f"not an event envelope: {exc}") from exc
    except ValueError as exc:
        raise MalformedEvent(f"not an event envelope: {exc}") from exc
    except RecursionError:
        raise MalformedEvent("event is nested too deeply to decode") from None
    if env.kind in KINDS and env.v <= SCHEMA_VERSION:
        # A kind we know at a version we know that does not fit: that's bad data.
        raise MalformedEvent(f"invalid {env.kind} event: {typed_error}")
    reason = "unknown kind" if env.kind not in KINDS else f"newer version v{env.v}"
    fields = {k: getattr(env, k) for k in ENVELOPE_KEYS}
    data_fields = {k: v for k, v in body.items() if k not in ENVELOPE_KEYS}
    return RawEvent(**fields, data=data_fields, reason=reason)


def event_to_dict(event: AnyEvent) -> dict[str, Any]:
    """A plain dict with stable field names (the re-encoded struct)."""
    if isinstance(event, RawEvent):
        d: dict[str, Any] = msgspec.to_builtins(event)
        d.update(d.pop("data"))
        d["raw_reason"] = d.pop("reason")
        return d
    out: dict[str, Any] = {"kind": event.kind}
    out.update(msgspec.to_builtins(event))
    return out
