"""Agent lifecycle events: containers coming and going, crashes, status, kicks."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import msgspec

from hyperhive.events.envelope import Event, Excerpt, Line, Text


class AgentLifecycle(Event, frozen=True, kw_only=True):
    """Fields shared by the lifecycle facts."""

    backend: str | None = None
    container: str | None = None
    port: int | None = None
    reason: str | None = None

    summary_fields: ClassVar[tuple[str, ...]] = ("backend", "port", "reason")


class AgentSpawned(AgentLifecycle, frozen=True, kw_only=True, tag="agent.spawned"):
    """An agent was created: its container and state dirs exist now."""

    model: str | None = None


class AgentStarted(AgentLifecycle, frozen=True, kw_only=True, tag="agent.started"):
    """An agent's container (or local process) started running."""


class AgentStopped(AgentLifecycle, frozen=True, kw_only=True, tag="agent.stopped"):
    """An agent's container was stopped on purpose."""


class AgentPaused(AgentLifecycle, frozen=True, kw_only=True, tag="agent.paused"):
    """An agent was paused: its harness takes no new turns until resumed."""


class AgentResumed(AgentLifecycle, frozen=True, kw_only=True, tag="agent.resumed"):
    """A paused agent was resumed."""


class AgentDestroyed(AgentLifecycle, frozen=True, kw_only=True, tag="agent.destroyed"):
    """An agent's container was removed; with `purged` its state and claude dirs too."""

    purged: bool = False


class AgentRebuilt(AgentLifecycle, frozen=True, kw_only=True, tag="agent.rebuilt"):
    """An agent's container was rebuilt from its configuration."""


class AgentCrashed(Event, frozen=True, kw_only=True, tag="agent.crashed"):
    """An agent's container or process exited without being asked to."""

    exit_status: int | None = None
    signal: str | None = None
    unit: str | None = None
    last_log_lines: list[Excerpt] = []
    restart_planned: bool = False

    summary_fields: ClassVar[tuple[str, ...]] = ("exit_status", "signal", "restart_planned")


class AgentStatusSet(Event, frozen=True, kw_only=True, tag="agent.status_set"):
    """An agent set its one-line status text (shown on the dashboard)."""

    status_text: Line

    summary_fields: ClassVar[tuple[str, ...]] = ("status_text",)


class AgentKicked(Event, frozen=True, kw_only=True, tag="agent.kicked"):
    """An agent was nudged to take a turn (by the operator, or its inbox was non-empty at start)."""

    by: str
    reason: Text | None = None

    summary_fields: ClassVar[tuple[str, ...]] = ("by", "reason")


AgentAction = Literal["spawn", "start", "stop", "restart", "rebuild", "destroy"]


class AgentActionStarted(Event, frozen=True, kw_only=True, tag="agent.action_started"):
    """c0re began a lifecycle action on an agent (start, stop, rebuild, ...); it is in flight."""

    action: AgentAction
    by: str

    summary_fields: ClassVar[tuple[str, ...]] = ("action", "by")


class AgentActionFailed(Event, frozen=True, kw_only=True, tag="agent.action_failed"):
    """A lifecycle action on an agent failed; the agent stays as it was."""

    action: AgentAction
    error: Excerpt

    summary_fields: ClassVar[tuple[str, ...]] = ("action", "error")


class AgentNeedsLogin(Event, frozen=True, kw_only=True, tag="agent.needs_login"):
    """The agent's Claude credentials are missing or expired: it takes no turns until login."""

    reason: Line = ""

    summary_fields: ClassVar[tuple[str, ...]] = ("reason",)


class ModelChanged(Event, frozen=True, kw_only=True, tag="model.changed"):
    """An agent's model changed; the harness reads the current model at every turn."""

    model: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    by: str

    summary_fields: ClassVar[tuple[str, ...]] = ("model", "by")
