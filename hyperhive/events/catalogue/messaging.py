"""Messages between agents and the agents' waits on their inboxes."""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec

from hyperhive.events.envelope import Event, Line, Text

MAX_WAIT_SECONDS = 180


def clamp_wait(seconds: float) -> int:
    """An agent may wait on its inbox 0..180 s; anything else is clamped into range."""
    if seconds != seconds:  # NaN
        return 0
    return int(max(0, min(MAX_WAIT_SECONDS, seconds)))


SystemKind = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,47}$")]


class MessageSent(Event, frozen=True, kw_only=True, tag="message.sent"):
    """A message was put in an agent's inbox (published on `hive.<hive>.inbox.<to>`)."""

    msg_id: str
    from_: str = msgspec.field(name="from")
    to: str
    body: Text
    # Set on system messages (`from` = `_system`): kick, operator_answered,
    # approval_resolved, container_crash, ...; `ref` names what it is about.
    system_kind: SystemKind | None = None
    ref: Line | None = None

    summary_fields: ClassVar[tuple[str, ...]] = ("from_", "to", "body")

    def related_agents(self) -> tuple[str, ...]:
        return (self.from_, self.to)


class RecvWaiting(Event, frozen=True, kw_only=True, tag="recv.waiting"):
    """An agent started waiting on its inbox for up to `wait_seconds`."""

    wait_seconds: Annotated[int, msgspec.Meta(ge=0, le=MAX_WAIT_SECONDS)]

    summary_fields: ClassVar[tuple[str, ...]] = ("wait_seconds",)


class RecvDelivered(Event, frozen=True, kw_only=True, tag="recv.delivered"):
    """Messages were handed to an agent by `recv`."""

    message_ids: list[str]

    summary_fields: ClassVar[tuple[str, ...]] = ("message_ids",)


class RecvTimedOut(Event, frozen=True, kw_only=True, tag="recv.timed_out"):
    """An agent's wait on its inbox ended with nothing to deliver."""

    waited_seconds: Annotated[float, msgspec.Meta(ge=0)] = 0.0

    summary_fields: ClassVar[tuple[str, ...]] = ("waited_seconds",)


class RecvKicked(Event, frozen=True, kw_only=True, tag="recv.kicked"):
    """An agent's wait on its inbox was cut short by a kick."""

    by: str

    summary_fields: ClassVar[tuple[str, ...]] = ("by",)
