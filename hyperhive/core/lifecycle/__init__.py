"""Where agents run: one small interface, two real backends and a fake for tests.

    backend = make_backend(cfg, "process")
    await backend.create(spec)        # container/dirs exist; idempotent
    await backend.start(spec)         # running (the harness inside)
    exit = await backend.exits.get()  # every exit, asked for or not: c0re decides

c0re calls these from its command service; every call is idempotent (starting
a running agent, stopping a stopped one, creating an existing one are no-ops),
so a c0re restart followed by any verb converges. Names reaching a backend are
validated already (`names.check_agent`); paths come from `statedir` only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

from hyperhive.statedir import StateDir


@dataclass(frozen=True)
class AgentSpec:
    """What a backend needs to know about one agent."""

    name: str
    hive: str
    state: StateDir
    nats_url: str
    port: int
    model: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # extra environment for the harness


@dataclass(frozen=True)
class Exit:
    """An agent's harness (process or container) stopped running."""

    agent: str
    exit_status: int | None  # None when killed by a signal, or unknown
    signal: str | None
    unit: str | None  # the systemd unit, for containers
    last_log_lines: tuple[str, ...]


class Backend(Protocol):
    """The lifecycle operations c0re needs; all idempotent, all refusing with `BackendError`."""

    name: str
    exits: asyncio.Queue[Exit]

    def container_name(self, agent: str) -> str | None:
        """The container an agent runs in (`h-<name>`), or None for a process."""

    async def create(self, spec: AgentSpec) -> None:
        """Make the agent exist: its dirs, credentials' place, container; not running."""

    async def start(self, spec: AgentSpec) -> None:
        """Run the agent's harness (creating it first if needed)."""

    async def stop(self, spec: AgentSpec) -> None:
        """Stop the harness; its exit is still reported on `exits`."""

    async def rebuild(self, spec: AgentSpec) -> None:
        """Apply the agent's config again (containers: update + restart); processes restart."""

    async def destroy(self, spec: AgentSpec) -> None:
        """Remove the container (or forget the process); state and claude dirs stay."""

    def is_running(self, agent: str) -> bool:
        """True if the backend believes the agent is running now."""

    async def log_lines(self, agent: str, lines: int = 200) -> list[str]:
        """The agent's last log lines (bounded)."""

    async def aclose(self) -> None:
        """Stop watching; processes die with c0re anyway."""
