"""Where agents run: one small interface, two real backends and a fake for tests.

    backend = make_backend(cfg, "process")
    await backend.create(spec)        # container/dirs exist; idempotent
    await backend.start(spec)         # running (the harness inside)
    exit = await backend.exits.get()  # every exit, asked for or not: c0re decides

c0re calls these from its command service; every call is idempotent (starting
a running agent, stopping a stopped one, creating an existing one are no-ops),
so a c0re restart followed by any verb converges. Names reaching a backend are
validated already (`names.check_agent`); paths come from `statedir` only.

    process          lifecycle.process.ProcessBackend: a child process of c0re
    nixos-container  lifecycle.container.ContainerBackend: a NixOS container h-<name>
    fake             lifecycle.fake.FakeBackend: in memory, for tests
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from hyperhive.config import HiveConfig
from hyperhive.errors import BackendError
from hyperhive.names import agent_role
from hyperhive.statedir import StateDir

BACKENDS = ("process", "nixos-container", "fake")


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
    nats_state: StateDir | None = None  # where the NATS users live, if not in `state`

    @property
    def credentials(self) -> Path:
        """The agent's NATS credentials file (in its hive's dir of the NATS state dir)."""
        return (self.nats_state or self.state).credentials_file(agent_role(self.name), self.hive)


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


def make_backend(cfg: HiveConfig, name: str | None = None, **kw: Any) -> Backend:
    """The backend called `name` (default: `cfg.backend`), given `kw`.

    `nixos-container` without `config_for` runs declared agents' prebuilt
    systems (`/etc/hyperhive/systems/<name>`).
    """
    name = cfg.backend if name is None else name
    if name == "process":
        from hyperhive.core.lifecycle.process import ProcessBackend

        return ProcessBackend(cfg, **kw)
    if name == "nixos-container":
        from hyperhive.core.lifecycle.container import ContainerBackend, prebuilt_system

        kw.setdefault("config_for", prebuilt_system)
        return ContainerBackend(cfg, **kw)
    if name == "fake":
        from hyperhive.core.lifecycle.fake import FakeBackend

        return FakeBackend(**kw)
    raise BackendError(f"unknown backend {name!r}: use one of {', '.join(BACKENDS)}")
