"""A real hive for c0re's tests: its own embedded nats-server, c0re, stand-in agents.

The server runs on the hive's own state dir, so the credentials c0re writes for
a new agent and the reload it triggers are the real ones; agents are real child
processes (the process backend) running `agent_standin.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client

from hyperhive.bus.connect import connect, resolve_endpoint
from hyperhive.bus.rpc import command
from hyperhive.bus.server import EmbeddedServer
from hyperhive.commands import Command
from hyperhive.config import AgentConfig, HiveConfig, StreamConfig
from hyperhive.core.lifecycle import Backend
from hyperhive.core.lifecycle.fake import FakeBackend
from hyperhive.core.lifecycle.process import ProcessBackend
from hyperhive.core.service import C0re, run_c0re
from hyperhive.names import OPERATOR, ROLE_ADMIN, ROLE_OPERATOR, agent_role
from tests.helpers import stop_task

STANDIN = Path(__file__).with_name("agent_standin.py")


@dataclass
class LiveHive:
    """A running c0re with its server, and clients to talk to it."""

    cfg: HiveConfig
    server: EmbeddedServer
    core: C0re
    task: asyncio.Task[None]
    operator: Client
    admin: Client
    clients: dict[str, Client] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        return Path(self.cfg.state_dir)

    async def op(self, cmd: Command, timeout: float = 30.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout + 5):  # a stuck client fails the test, at once
            return await command(self.operator, self.cfg.hive, OPERATOR, cmd, timeout=timeout)

    async def as_agent(self, agent: str) -> Client:
        if agent not in self.clients:
            endpoint = resolve_endpoint(self.cfg, agent_role(agent))
            self.clients[agent] = await connect(endpoint, f"test-{agent}", wait=True)
        return self.clients[agent]

    async def agent_says(self, agent: str, cmd: Command) -> dict[str, Any]:
        return await command(await self.as_agent(agent), self.cfg.hive, agent, cmd)


def hive_config(state: Path, hive: str, agents: tuple[str, ...] = ()) -> HiveConfig:
    return HiveConfig(
        hive=hive,
        state_dir=str(state),
        stream=StreamConfig(max_bytes=64 * 1024 * 1024),
        harness_command=(sys.executable, str(STANDIN), "{agent}"),
        agents={a: AgentConfig() for a in agents},
    )


@contextlib.asynccontextmanager
async def live_hive(
    state: Path, hive: str, agents: tuple[str, ...] = (), backend: Backend | None = None
) -> AsyncIterator[LiveHive]:
    """c0re running on a fresh embedded server (store under `state`)."""
    cfg = hive_config(state, hive, agents)
    server = EmbeddedServer(state, hive)
    server.start()
    try:
        async with running_c0re(cfg, server, backend) as live:
            yield live
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def running_c0re(
    cfg: HiveConfig, server: EmbeddedServer, backend: Backend | None = None
) -> AsyncIterator[LiveHive]:
    ready: asyncio.Future[C0re] = asyncio.get_running_loop().create_future()

    def on_ready(core: C0re) -> None:
        if not ready.done():  # c0re calls it again after a restart of its own
            ready.set_result(core)

    backend = backend or ProcessBackend(cfg, stop_grace=2.0)
    task = asyncio.create_task(run_c0re(cfg, backend=backend, on_ready=on_ready))
    try:
        async with asyncio.timeout(60):
            waiting: list[asyncio.Future[Any]] = [ready, task]
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # raises what stopped c0re
        core = ready.result()
        operator = await connect(resolve_endpoint(cfg, ROLE_OPERATOR), "test-operator", wait=True)
        admin = await connect(resolve_endpoint(cfg, ROLE_ADMIN), "test-admin", wait=True)
        live = LiveHive(cfg, server, core, task, operator, admin)
        try:
            yield live
        finally:
            for c in [operator, admin, *live.clients.values()]:
                with contextlib.suppress(Exception):
                    await c.close()
    finally:
        await stop_task(task, timeout=30)


@pytest.fixture
def hive_name() -> str:
    return "c0re-test"


@pytest.fixture
async def live(tmp_path: Path, hive_name: str) -> AsyncIterator[LiveHive]:
    async with live_hive(tmp_path / "state", hive_name, agents=("alice", "bob")) as h:
        yield h


@pytest.fixture
async def live_fake(tmp_path: Path, hive_name: str) -> AsyncIterator[LiveHive]:
    """c0re on real NATS whose agents run nowhere (the fake backend): decisions only."""
    async with live_hive(tmp_path / "state", hive_name, backend=FakeBackend()) as h:
        yield h
