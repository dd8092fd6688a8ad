"""The Backend contract, over every backend: the process backend (a real stand-in
harness), the container backend (fake system tools) and the in-memory fake.

Every verb is idempotent; `is_running` follows what happened; every exit is
reported on `exits`: one c0re asked for (stop) and one it did not (a crash).
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from hyperhive.core.lifecycle import BACKENDS, AgentSpec, Backend, make_backend
from hyperhive.core.lifecycle.container import ContainerBackend, prebuilt_system
from hyperhive.core.lifecycle.fake import FakeBackend
from hyperhive.core.lifecycle.process import ProcessBackend
from hyperhive.errors import BackendError
from hyperhive.statedir import StateDir
from tests.core.lifecycle.conftest import (
    FakeTools,
    SpecMaker,
    make_container_backend,
    next_exit,
    ready_count,
    standin_cfg,
)
from tests.helpers import wait_until


@dataclass
class Case:
    backend: Backend
    spec: AgentSpec
    crash: Callable[[], Awaitable[None]]  # make the agent's harness die on its own
    settled: Callable[[], Awaitable[None]]  # wait until a start has really happened
    exit_within: float  # how soon an unasked exit must be reported


@pytest.fixture(params=["process", "nixos-container", "fake"])
async def case(
    request: pytest.FixtureRequest,
    state: StateDir,
    make_spec: SpecMaker,
    tmp_path: Path,
) -> AsyncIterator[Case]:
    spec = make_spec("alice")
    if request.param == "process":
        process = ProcessBackend(standin_cfg(state, "{agent}"))
        started = 0

        async def crash() -> None:
            pid = process.pid("alice")
            assert pid is not None
            os.kill(pid, signal.SIGKILL)

        async def settled() -> None:
            nonlocal started
            started += 1
            await wait_until(lambda: ready_count(state) >= started, what="the stand-in ready")

        yield Case(process, spec, crash, settled, exit_within=1.0)
        await process.aclose()
    elif request.param == "nixos-container":
        tools: FakeTools = request.getfixturevalue("fake_tools")
        container = make_container_backend(tools, state, tmp_path)

        async def crash_container() -> None:
            tools.set_unit(
                "h-alice",
                ActiveState="failed",
                Result="exit-code",
                ExecMainCode="1",
                ExecMainStatus="1",
            )

        async def nothing() -> None:
            pass

        yield Case(container, spec, crash_container, nothing, exit_within=5.0)
        await container.aclose()
    else:
        fake = FakeBackend()

        async def crash_fake() -> None:
            fake.crash("alice", status=1)

        async def nothing_fake() -> None:
            pass

        yield Case(fake, spec, crash_fake, nothing_fake, exit_within=1.0)
        await fake.aclose()


async def test_every_verb_is_idempotent_and_every_exit_is_reported(case: Case) -> None:
    backend, spec = case.backend, case.spec

    await backend.create(spec)
    await backend.create(spec)
    assert not backend.is_running("alice")
    assert spec.state.agent_state("alice").is_dir() or isinstance(backend, FakeBackend)

    await backend.start(spec)
    await case.settled()
    await backend.start(spec)  # already running: nothing happens
    assert backend.is_running("alice")
    assert backend.exits.empty()

    await case.crash()  # nobody asked for this one
    exit_ = await next_exit(backend.exits, case.exit_within)
    assert exit_.agent == "alice"
    assert exit_.exit_status == 1 or exit_.signal == "SIGKILL"
    assert not backend.is_running("alice")

    await backend.start(spec)
    await case.settled()
    assert backend.is_running("alice")
    await backend.stop(spec)  # asked for: still reported
    stopped = await next_exit(backend.exits)
    assert stopped.agent == "alice"
    assert not backend.is_running("alice")
    await backend.stop(spec)  # stopped already: nothing happens, nothing reported
    assert backend.exits.empty()

    await backend.destroy(spec)
    await backend.destroy(spec)
    assert not backend.is_running("alice")
    assert backend.exits.empty()


async def test_destroy_stops_a_running_agent_and_reports_it(case: Case) -> None:
    await case.backend.start(case.spec)
    await case.settled()
    await case.backend.destroy(case.spec)
    assert (await next_exit(case.backend.exits)).agent == "alice"
    assert not case.backend.is_running("alice")


async def test_rebuild_leaves_the_agent_running(case: Case) -> None:
    await case.backend.start(case.spec)
    await case.settled()
    await case.backend.rebuild(case.spec)
    await case.settled()
    assert case.backend.is_running("alice")
    assert (await next_exit(case.backend.exits)).agent == "alice"  # the old run's end


async def test_an_unknown_agent_is_not_running_and_has_no_log(case: Case) -> None:
    assert not case.backend.is_running("nobody")
    if not isinstance(case.backend, ContainerBackend):  # its journal is the system's
        assert await case.backend.log_lines("nobody") == []


def test_make_backend_chooses_by_name(tmp_path: Path) -> None:
    from hyperhive.config import HiveConfig

    cfg = HiveConfig(state_dir=str(tmp_path))
    assert isinstance(make_backend(cfg, "process"), ProcessBackend)
    assert isinstance(make_backend(cfg), ProcessBackend)  # cfg.backend
    container = make_backend(cfg, "nixos-container", poll_interval=0.5)
    assert isinstance(container, ContainerBackend)
    assert container.config_for is prebuilt_system
    assert container.poll_interval == 0.5
    assert isinstance(make_backend(cfg, "fake"), FakeBackend)
    assert {make_backend(cfg, name).name for name in BACKENDS} == set(BACKENDS)
    with pytest.raises(BackendError, match="unknown backend 'docker'"):
        make_backend(cfg, "docker")


def test_every_backend_is_a_backend(tmp_path: Path) -> None:
    """Type-checked (mypy): each class satisfies the protocol."""
    from hyperhive.config import HiveConfig

    cfg = HiveConfig(state_dir=str(tmp_path))
    backends: list[Backend] = [
        ProcessBackend(cfg),
        ContainerBackend(cfg, config_for=prebuilt_system),
        FakeBackend(),
    ]
    assert [b.container_name("alice") for b in backends] == [None, "h-alice", None]
    assert asyncio.Queue in {type(b.exits) for b in backends}
