"""Hive-wide facts about the machinery itself (c0re, the bus)."""

from __future__ import annotations

from typing import ClassVar

from hyperhive.events.envelope import Event, Excerpt, Line


class HiveStarted(Event, frozen=True, kw_only=True, tag="hive.started"):
    """A hive service (c0re, projector, ...) started and is serving."""

    service: str
    version: str
    host: str | None = None

    summary_fields: ClassVar[tuple[str, ...]] = ("service", "version")


class HiveStopped(Event, frozen=True, kw_only=True, tag="hive.stopped"):
    """A hive service stopped cleanly."""

    service: str
    reason: str | None = None

    summary_fields: ClassVar[tuple[str, ...]] = ("service", "reason")


class MessageDeadLettered(Event, frozen=True, kw_only=True, tag="bus.dead_lettered"):
    """A consumer gave up on a message it could not process (poison); the loop went on."""

    consumer: str
    stream_seq: int
    subject: str
    error: Excerpt
    excerpt: Line = ""

    summary_fields: ClassVar[tuple[str, ...]] = ("consumer", "stream_seq", "error")
