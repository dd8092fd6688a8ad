"""Fixtures of the lifecycle tests: a state dir, specs, the stand-in harness, fake tools.

The container backend runs against fake `nixos-container`, `systemctl`,
`journalctl`, `machinectl` and `nix-env` (tests/core/lifecycle/fake_tools.py),
put first on PATH; its conf and systemd dirs are in the test's tmp dir.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from hyperhive.config import HiveConfig
from hyperhive.core.lifecycle import AgentSpec, Exit
from hyperhive.core.lifecycle.container import ContainerBackend, ContainerSystem, Tools
from hyperhive.core.lifecycle.process import ProcessBackend
from hyperhive.core.ports import agent_port
from hyperhive.names import agent_role
from hyperhive.statedir import StateDir

HERE = Path(__file__).resolve().parent
STANDIN = HERE / "standin.py"
FAKE_TOOLS = HERE / "fake_tools.py"
TOOL_NAMES = ("nixos-container", "systemctl", "journalctl", "machinectl", "nix-env")
HIVE = "h1"
NATS_URL = "nats://127.0.0.1:4222"

SpecMaker = Callable[..., AgentSpec]


@pytest.fixture
def state(tmp_path: Path) -> StateDir:
    return StateDir.at(tmp_path / "state")


@pytest.fixture
def make_spec(state: StateDir) -> SpecMaker:
    def make(name: str = "alice", **env: str) -> AgentSpec:
        return AgentSpec(
            name=name, hive=HIVE, state=state, nats_url=NATS_URL, port=agent_port(name), env=env
        )

    return make


async def next_exit(exits: asyncio.Queue[Exit], timeout: float = 10.0) -> Exit:
    """The next Exit on the queue, or fail after `timeout` seconds."""
    try:
        return await asyncio.wait_for(exits.get(), timeout)
    except TimeoutError:
        raise AssertionError(f"no Exit within {timeout}s") from None


# ---------------------------------------------------------------- the process backend


def standin_cfg(state: StateDir, *args: str) -> HiveConfig:
    """A config whose harness is the stand-in, run with this interpreter."""
    return HiveConfig(
        state_dir=str(state.root), harness_command=(sys.executable, str(STANDIN), *args)
    )


@pytest.fixture
async def process_backend(state: StateDir) -> AsyncIterator[ProcessBackend]:
    backend = ProcessBackend(standin_cfg(state, "{agent}"), stop_grace=5.0)
    yield backend
    await backend.aclose()


def log_text(state: StateDir, agent: str = "alice") -> str:
    path = state.harness_log(agent)
    return path.read_text(errors="replace") if path.exists() else ""


def ready_count(state: StateDir, agent: str = "alice") -> int:
    return log_text(state, agent).count("standin: ready")


# ---------------------------------------------------------------- the container backend


class FakeTools:
    """The fake tools' state dir: what they were called with, what they will answer."""

    def __init__(self, root: Path, bin_dir: Path, conf_dir: Path) -> None:
        self.root = root
        self.bin = bin_dir
        self.conf_dir = conf_dir

    def calls(self) -> list[list[str]]:
        path = self.root / "calls.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def clear(self) -> None:
        (self.root / "calls.jsonl").unlink(missing_ok=True)

    def set_unit(self, machine: str, **props: str) -> None:
        path = self.root / "units" / f"container@{machine}.service.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        current = json.loads(path.read_text()) if path.exists() else {}
        current.update(props)
        path.write_text(json.dumps(current))

    def unit(self, machine: str) -> dict[str, str]:
        path = self.root / "units" / f"container@{machine}.service.json"
        return dict(json.loads(path.read_text())) if path.exists() else {}

    def journal(self, source: str, lines: list[str]) -> None:
        path = self.root / "journal" / source
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(line + "\n" for line in lines))

    def fail(self, tool: str, verb: str, stderr: str) -> None:
        path = self.root / "fail" / f"{tool}-{verb}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(stderr)

    def conf(self, machine: str) -> Path:
        return self.conf_dir / f"{machine}.conf"


@pytest.fixture
def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeTools:
    root = tmp_path / "tools"
    bin_dir = tmp_path / "bin"
    conf_dir = tmp_path / "etc" / "nixos-containers"
    for path in (root, bin_dir, conf_dir):
        path.mkdir(parents=True)
    for name in TOOL_NAMES:
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_TOOLS}" {name} "$@"\n')
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_TOOLS", str(root))
    monkeypatch.setenv("FAKE_CONF_DIR", str(conf_dir))
    return FakeTools(root, bin_dir, conf_dir)


FLAKE = "/etc/hive#{agent}"


def flake_system(agent: str) -> ContainerSystem:
    return ContainerSystem.flake(FLAKE.format(agent=agent))


def container_files(state: StateDir, tmp_path: Path, agent: str = "alice") -> Path:
    """The host files a container binds read-only: the agent's credentials, hive.toml."""
    credentials = state.credentials_file(agent_role(agent), HIVE)
    credentials.parent.mkdir(parents=True, exist_ok=True)
    credentials.write_text('{"user": "agent-alice", "password": "x"}')
    hive_toml = tmp_path / "etc" / "hyperhive" / "hive.toml"
    hive_toml.parent.mkdir(parents=True, exist_ok=True)
    hive_toml.write_text('hive = "h1"\n')
    return hive_toml


def make_container_backend(
    fake_tools: FakeTools,
    state: StateDir,
    tmp_path: Path,
    *,
    config_for: Callable[[str], ContainerSystem] = flake_system,
    tools: Tools | None = None,
    memory_max: str = "4G",
    cpu_quota: str = "200%",
    poll_interval: float = 0.05,
) -> ContainerBackend:
    return ContainerBackend(
        HiveConfig(state_dir=str(state.root)),
        config_for=config_for,
        tools=tools or Tools(),
        conf_dir=fake_tools.conf_dir,
        systemd_dir=tmp_path / "etc" / "systemd" / "system",
        profiles_dir=tmp_path / "profiles",
        hive_toml=container_files(state, tmp_path),
        memory_max=memory_max,
        cpu_quota=cpu_quota,
        poll_interval=poll_interval,
    )


@pytest.fixture
async def container_backend(
    fake_tools: FakeTools, state: StateDir, tmp_path: Path
) -> AsyncIterator[ContainerBackend]:
    """A backend whose watcher never polls: tests of exact commands see only their own."""
    backend = make_container_backend(fake_tools, state, tmp_path, poll_interval=3600)
    yield backend
    await backend.aclose()
