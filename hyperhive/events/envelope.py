"""The event envelope shared by every kind, and the raw form for unknown events.

Every event is a frozen msgspec struct tagged on `kind`. Schema evolution adds
defaulted fields only; decoding ignores fields it does not know, so an event
written by a newer hyperhive still decodes here.

`id` and `ts` are filled when an event is made in this process, and required
when one is decoded: an event read without them is malformed, never given a
fresh id or the current time (which would make every read of it different).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

import msgspec

from hyperhive.ids import new_id

SCHEMA_VERSION = 1

# Who emits events (`source`): c0re, a harness, the dashboard, the bus machinery
# itself (projector, dead letters), or an operator (`operator:<name>`).
SOURCE_C0RE = "c0re"
SOURCE_HARNESS = "harness"
SOURCE_DASHBOARD = "dashboard"
SOURCE_BUS = "bus"
OPERATOR_SOURCE_PREFIX = "operator:"
SOURCES = (SOURCE_C0RE, SOURCE_HARNESS, SOURCE_DASHBOARD, SOURCE_BUS)

MAX_TEXT = 64 * 1024  # characters of free text in any one field (message bodies, answers, ...)
MAX_LINE = 1024  # characters of a one-line field (status text, an option)
MAX_EXCERPT = 4096  # characters of an excerpt (a result, an error, a log line)

# The constrained text types every catalogue module shares.
Text = Annotated[str, msgspec.Meta(max_length=MAX_TEXT)]
Line = Annotated[str, msgspec.Meta(max_length=MAX_LINE)]
Excerpt = Annotated[str, msgspec.Meta(max_length=MAX_EXCERPT)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]

_UNSET_TS = datetime(1, 1, 1, tzinfo=UTC)  # "not given": filled on construction, refused on decode


def utcnow() -> datetime:
    return datetime.now(UTC)


def check_ts(ts: datetime) -> None:
    """Refuse a timestamp without a zone, or one that has no UTC equivalent."""
    if ts.utcoffset() is None:
        raise ValueError("`ts` has no time zone (write UTC as ...Z)")
    try:
        ts.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"`ts` {ts.isoformat()} is out of range in UTC") from None


def operator_source(name: str) -> str:
    """The `source` of an event an operator caused: `operator:<name>`."""
    return OPERATOR_SOURCE_PREFIX + name


class _Decoding(threading.local):
    active = False


decoding = _Decoding()  # set by the codec while it decodes (per thread)


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    """The envelope: who, when, where. Subclasses add the kind's own fields."""

    id: str = ""
    ts: datetime = _UNSET_TS
    hive: str
    agent: str | None = None
    source: str
    v: int = SCHEMA_VERSION
    correlation_id: str | None = None
    causation_id: str | None = None

    summary_fields: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        if self.id and self.ts is not _UNSET_TS and self.ts.tzinfo is UTC:
            return  # the common case, decoded or made: nothing to fill or check
        if not self.id:
            if decoding.active:
                raise ValueError("event has no `id`")
            msgspec.structs.force_setattr(self, "id", new_id())
        if self.ts is _UNSET_TS:
            if decoding.active:
                raise ValueError("event has no `ts`")
            msgspec.structs.force_setattr(self, "ts", utcnow())
        elif decoding.active:
            check_ts(self.ts)

    @property
    def kind(self) -> str:
        return kind_of(type(self))

    def related_agents(self) -> tuple[str, ...]:
        """Agents this event concerns besides `agent` (a message's recipient)."""
        return ()


_KIND_OF: dict[type, str] = {}


def kind_of(cls: type) -> str:
    """The tag (`kind`) of an event class: the one way to ask."""
    tag = _KIND_OF.get(cls)
    if tag is None:
        tag = cls.__struct_config__.tag  # type: ignore[attr-defined]
        if not isinstance(tag, str):
            raise TypeError(f"{cls.__name__} is not a tagged event")
        _KIND_OF[cls] = tag
    return tag


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """The envelope alone, leniently: what every event has, known kind or not."""

    id: Annotated[str, msgspec.Meta(min_length=1)]
    ts: datetime
    hive: str
    kind: str
    source: str = "?"
    agent: str | None = None
    v: int = SCHEMA_VERSION
    correlation_id: str | None = None
    causation_id: str | None = None


class RawEvent(Envelope, frozen=True, kw_only=True):
    """An event of a kind (or version) this build does not know: kept, shown, stored."""

    data: dict[str, Any]
    reason: str

    def related_agents(self) -> tuple[str, ...]:
        return ()


AnyEvent = Event | RawEvent
ENVELOPE_KEYS = frozenset(Envelope.__struct_fields__)
