"""Turn events: one claude invocation of an agent, from start to its end."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import msgspec

from hyperhive.events.envelope import Event, Excerpt, NonNegative, Text

TurnTrigger = Literal["message", "kick", "operator", "schedule"]


class Usage(msgspec.Struct, frozen=True, kw_only=True):
    """Token counts of one turn, as the model reported them."""

    input_tokens: NonNegative = 0
    output_tokens: NonNegative = 0
    cache_read_tokens: NonNegative = 0
    cache_creation_tokens: NonNegative = 0


class TurnStarted(Event, frozen=True, kw_only=True, tag="turn.started"):
    """An agent began a turn with the given model."""

    turn_id: str
    model: str
    trigger: TurnTrigger

    summary_fields: ClassVar[tuple[str, ...]] = ("turn_id", "model", "trigger")


class TurnFinished(Event, frozen=True, kw_only=True, tag="turn.finished"):
    """An agent's turn ended normally."""

    turn_id: str
    duration_ms: NonNegative
    usage: Usage = Usage()
    cost_usd: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    num_turns: NonNegative = 0
    result_excerpt: Excerpt = ""

    summary_fields: ClassVar[tuple[str, ...]] = ("turn_id", "duration_ms", "cost_usd")


class TurnFailed(Event, frozen=True, kw_only=True, tag="turn.failed"):
    """An agent's turn ended with an error."""

    turn_id: str
    error: Text
    duration_ms: NonNegative | None = None

    summary_fields: ClassVar[tuple[str, ...]] = ("turn_id", "error")


class TurnCancelled(Event, frozen=True, kw_only=True, tag="turn.cancelled"):
    """An agent's turn was cancelled before it ended."""

    turn_id: str
    by: str
    reason: str | None = None

    summary_fields: ClassVar[tuple[str, ...]] = ("turn_id", "by")


StepKind = Literal["text", "tool_use", "tool_result"]


class TurnStep(Event, frozen=True, kw_only=True, tag="turn.step"):
    """One step of a running turn (assistant text, a tool call, a tool result): the live terminal."""

    turn_id: str
    step: StepKind
    tool: Annotated[str, msgspec.Meta(max_length=128)] | None = None
    excerpt: Excerpt = ""
    truncated: bool = False

    summary_fields: ClassVar[tuple[str, ...]] = ("turn_id", "step", "tool", "excerpt")
