"""The event envelope shared by every kind, and the raw form for unknown events.

Every event is a frozen msgspec struct tagged on `kind`. Schema evolution adds
defaulted fields only; decoding ignores fields it does not know, so an event
written by a newer hyperhive still decodes here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import msgspec

from hyperhive.ids import new_id

SCHEMA_VERSION = 1
SOURCE_C0RE = "c0re"
SOURCE_HARNESS = "harness"
SOURCE_DASHBOARD = "dashboard"
SOURCE_BUS = "bus"
MAX_TEXT = 64 * 1024  # bytes of free text in any one field (message bodies, answers, ...)


def utcnow() -> datetime:
    return datetime.now(UTC)


def operator_source(name: str) -> str:
    """The `source` of an event an operator caused: `operator:<name>`."""
    return f"operator:{name}"


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="kind"):
    """The envelope: who, when, where. Subclasses add the kind's own fields."""

    id: str = msgspec.field(default_factory=new_id)
    ts: datetime = msgspec.field(default_factory=utcnow)
    hive: str
    agent: str | None = None
    source: str
    v: int = SCHEMA_VERSION
    correlation_id: str | None = None
    causation_id: str | None = None

    summary_fields: ClassVar[tuple[str, ...]] = ()

    @property
    def kind(self) -> str:
        return _KIND_OF[type(self)]

    def related_agents(self) -> tuple[str, ...]:
        """Agents this event concerns besides `agent` (a message's recipient)."""
        return ()


class _KindOf(dict[type, str]):
    """Event class -> its tag, filled on first use (the tag is fixed per class)."""

    def __missing__(self, cls: type) -> str:
        tag = cls.__struct_config__.tag  # type: ignore[attr-defined]
        assert isinstance(tag, str)
        self[cls] = tag
        return tag


_KIND_OF = _KindOf()


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """Lenient envelope used to keep events we cannot decode as a known kind."""

    id: str
    ts: datetime
    hive: str
    kind: str
    source: str = "?"
    agent: str | None = None
    v: int = SCHEMA_VERSION
    correlation_id: str | None = None
    causation_id: str | None = None


class RawEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event of a kind (or version) this build does not know: kept, shown, stored."""

    id: str
    ts: datetime
    hive: str
    kind: str
    source: str
    agent: str | None
    v: int
    data: dict[str, Any]
    reason: str

    def related_agents(self) -> tuple[str, ...]:
        return ()


AnyEvent = Event | RawEvent
