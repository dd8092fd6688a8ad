"""Test factories: a valid instance of any event kind, built from its schema.

`sample("turn.finished")` fills every required field with a value that meets
its constraints (read with `msgspec.inspect`), so a new kind or field needs no
factory of its own; `wire(event, field=...)` gives its JSON with fields changed
or (`...`) deleted, for the decoder's refusal paths.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import msgspec
import msgspec.inspect as mi

from hyperhive.events import KINDS, encode_event
from hyperhive.events.envelope import Event

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
