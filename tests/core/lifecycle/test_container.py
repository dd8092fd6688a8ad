"""The nixos-container backend against fake nixos-container/systemctl/journalctl on PATH.

The exact commands, the .conf rewrite (binds in EXTRA_NSPAWN_FLAGS, every
address field empty, PRIVATE_NETWORK=0, other lines kept, idempotent), the
limits drop-in, name refusal, the crash watch, and one-line errors.
"""

from __future__ import annotations

import dataclasses
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hyperhive.core.lifecycle.common import LINE_MAX
from hyperhive.core.lifecycle.container import (
    UNIT_PROPERTIES,
    ContainerBackend,
    ContainerSystem,
    Tools,
    UnitState,
    limits_dropin,
    machine_name,
    rewrite_conf,
)
from hyperhive.errors import BackendError, InvalidName
from hyperhive.names import agent_role
from hyperhive.statedir import StateDir
from tests.core.lifecycle.conftest import (
    HIVE,
    FakeTools,
    SpecMaker,
    make_container_backend,
    next_exit,
)

UNIT = "container@h-alice.service"
LIST = ["nixos-container", "list"]
SHOW = ["systemctl", "show", UNIT, "-p", UNIT_PROPERTIES]
NEED_RELOAD = ["systemctl", "show", UNIT, "-p", "NeedDaemonReload"]
RELOAD = ["systemctl", "daemon-reload"]
CREATE = ["nixos-container", "create", "h-alice", "--flake", "/etc/hive#alice"]


@pytest.fixture
async def watched(
    fake_tools: FakeTools, state: StateDir, tmp_path: Path
) -> AsyncIterator[ContainerBackend]:
    """A backend whose watcher polls every 50 ms."""
    backend = make_container_backend(fake_tools, state, tmp_path, poll_interval=0.05)
    yield backend
    await backend.aclose()


def dropin_path(tmp_path: Path) -> Path:
    return tmp_path / "etc/systemd/system" / f"{UNIT}.d" / "hyperhive-limits.conf"


def nspawn_flags(state: StateDir, tmp_path: Path) -> str:
    agent = state.agent("alice")
    return (
        f"--bind={agent}/state:/state --bind={agent}/claude:/root/.claude "
        f"--bind-ro={state.credentials_file(agent_role('alice'), HIVE)}"
        ":/etc/hyperhive/nats-credentials.json "
        f"--bind-ro={tmp_path}/etc/hyperhive/hive.toml:/etc/hyperhive/hive.toml"
    )


# ---------------------------------------------------------------- names


def test_container_names_are_h_dash_name_and_at_most_11_characters() -> None:
    assert machine_name("alice") == "h-alice"
    assert machine_name("abcdefghi") == "h-abcdefghi"  # 9: the longest that fits
    with pytest.raises(BackendError) as info:
        machine_name("abcdefghij")
    message = str(info.value)
    assert "'abcdefghij' is too long" in message
    assert "at most 11 characters" in message
    assert "so at most 9" in message
    with pytest.raises(InvalidName):
        machine_name("../x")


async def test_a_long_name_is_refused_before_any_command(
    container_backend: ContainerBackend, fake_tools: FakeTools, make_spec: SpecMaker
) -> None:
    spec = make_spec("abcdefghij")
    for verb in (container_backend.create, container_backend.start, container_backend.stop):
        with pytest.raises(BackendError, match="too long for the nixos-container backend"):
            await verb(spec)
    with pytest.raises(BackendError, match="too long"):
        container_backend.container_name("abcdefghij")
    assert fake_tools.calls() == []
    assert not container_backend.is_running("abcdefghij")


# ---------------------------------------------------------------- create


async def test_create_makes_the_container_and_rewrites_its_conf(
    container_backend: ContainerBackend,
    fake_tools: FakeTools,
    make_spec: SpecMaker,
    state: StateDir,
    tmp_path: Path,
) -> None:
    await container_backend.create(make_spec())
    assert fake_tools.calls() == [LIST, CREATE, RELOAD]
    assert fake_tools.conf("h-alice").read_text() == (
        "PRIVATE_NETWORK=0\n"
        "HOST_ADDRESS=\n"
        "LOCAL_ADDRESS=\n"
        "HOST_BRIDGE=\n"
        "HOST_PORT=\n"
        "AUTO_START=0\n"
        "FLAKE=/etc/hive\n"
        "HOST_ADDRESS6=\n"
        "LOCAL_ADDRESS6=\n"
        f'EXTRA_NSPAWN_FLAGS="{nspawn_flags(state, tmp_path)}"\n'
    )
    for path in (state.agent("alice"), state.agent_state("alice"), state.agent_claude("alice")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    assert not container_backend.is_running("alice")
    assert fake_tools.unit("h-alice") == {}  # created, not started


async def test_a_second_create_keeps_other_lines_and_changes_nothing_else(
    container_backend: ContainerBackend,
    fake_tools: FakeTools,
    make_spec: SpecMaker,
    state: StateDir,
    tmp_path: Path,
) -> None:
    await container_backend.create(make_spec())
    conf = fake_tools.conf("h-alice")
    # Someone set an address and added lines of their own since.
    conf.write_text(
        conf.read_text().replace("HOST_ADDRESS6=\n", "HOST_ADDRESS6=fc00::1\n")
        + "# a comment\nMY_SETTING=keep me\nHOST_ADDRESS=10.0.0.9\n"
    )
    fake_tools.clear()
    await container_backend.create(make_spec())
    assert fake_tools.calls() == [LIST, NEED_RELOAD]  # no create, the drop-in unchanged
    lines = conf.read_text().splitlines()
    assert lines[lines.index("HOST_ADDRESS6=")] == "HOST_ADDRESS6="  # cleared in place
    assert lines[-2:] == ["# a comment", "MY_SETTING=keep me"]  # the repeat is gone
    assert lines.count("HOST_ADDRESS=") == 1
    assert f'EXTRA_NSPAWN_FLAGS="{nspawn_flags(state, tmp_path)}"' in lines

    before = conf.stat()
    fake_tools.clear()
    await container_backend.create(make_spec())
    after = conf.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert fake_tools.calls() == [LIST, NEED_RELOAD]


async def test_a_pending_daemon_reload_is_done_even_when_nothing_changed(
    container_backend: ContainerBackend, fake_tools: FakeTools, make_spec: SpecMaker
) -> None:
    await container_backend.create(make_spec())
    fake_tools.set_unit("h-alice", NeedDaemonReload="yes")
    fake_tools.clear()
    await container_backend.create(make_spec())
    assert fake_tools.calls() == [LIST, NEED_RELOAD, RELOAD]


async def test_the_limits_drop_in(
    fake_tools: FakeTools, make_spec: SpecMaker, state: StateDir, tmp_path: Path
) -> None:
    backend = make_container_backend(fake_tools, state, tmp_path, memory_max="2G", cpu_quota="150%")
    await backend.create(make_spec())
    path = dropin_path(tmp_path)
    assert path.read_text() == (
        "# Written by hyperhive (c0re): the limits of one agent's container.\n"
        "[Service]\n"
        "MemoryMax=2G\n"
        "CPUQuota=150%\n"
        "# c0re decides whether a crashed agent restarts (restart_crashed), not systemd.\n"
        "Restart=no\n"
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert limits_dropin("4G", "200%").splitlines()[2:4] == ["MemoryMax=4G", "CPUQuota=200%"]
    with pytest.raises(BackendError, match="memory_max"):
        make_container_backend(fake_tools, state, tmp_path, memory_max="lots")
    with pytest.raises(BackendError, match="cpu_quota"):
        make_container_backend(fake_tools, state, tmp_path, cpu_quota="2 cpus\nX=1")


@pytest.mark.parametrize(
    ("system", "args"),
    [
        (
            ContainerSystem.config_file("/etc/hive/alice.nix"),
            ["--config-file", "/etc/hive/alice.nix"],
        ),
        (
            ContainerSystem.system_path("/nix/store/abc-system"),
            ["--system-path", "/nix/store/abc-system"],
        ),
    ],
)
async def test_create_passes_the_agents_system(
    fake_tools: FakeTools,
    make_spec: SpecMaker,
    state: StateDir,
    tmp_path: Path,
    system: ContainerSystem,
    args: list[str],
) -> None:
    backend = make_container_backend(fake_tools, state, tmp_path, config_for=lambda _: system)
    await backend.create(make_spec())
    assert fake_tools.calls()[1] == ["nixos-container", "create", "h-alice", *args]


def test_a_flake_reference_names_an_attribute() -> None:
    assert ContainerSystem.flake("/etc/hive#alice").args() == ["--flake", "/etc/hive#alice"]
    for bad in ("/etc/hive", "#alice", "/etc/hive#"):
        with pytest.raises(BackendError, match="use <flake>#<attr>"):
            ContainerSystem.flake(bad)


async def test_a_bind_path_nspawn_would_split_is_refused(
    fake_tools: FakeTools, make_spec: SpecMaker, tmp_path: Path
) -> None:
    state = StateDir.at(tmp_path / "my state")
    backend = make_container_backend(fake_tools, state, tmp_path)
    with pytest.raises(BackendError, match="expands its nspawn flags unquoted"):
        await backend.create(dataclasses.replace(make_spec(), state=state))
    assert fake_tools.calls() == []


async def test_a_declarative_containers_conf_is_not_touched(
    container_backend: ContainerBackend,
    fake_tools: FakeTools,
    make_spec: SpecMaker,
    tmp_path: Path,
) -> None:
    store = tmp_path / "store-h-alice.conf"
    store.write_text("PRIVATE_NETWORK=1\n")
    fake_tools.conf("h-alice").symlink_to(store)
    with pytest.raises(BackendError, match="declarative container"):
        await container_backend.create(make_spec())
    assert store.read_text() == "PRIVATE_NETWORK=1\n"


def test_rewrite_conf_sets_in_place_and_appends_what_is_missing() -> None:
    text = "A=1\n# B=commented\nB=2\nC=3\nB=again\n"
    assert rewrite_conf(text, {"B": "x", "D": '"y z"'}) == (
        'A=1\n# B=commented\nB=x\nC=3\nD="y z"\n'
    )
    assert rewrite_conf("", {"A": ""}) == "A=\n"


# ---------------------------------------------------------------- start, stop, exits


async def test_start_and_stop_run_exactly_these_commands(
    container_backend: ContainerBackend, fake_tools: FakeTools, make_spec: SpecMaker
) -> None:
    spec = make_spec()
    await container_backend.create(spec)
    fake_tools.clear()
    await container_backend.start(spec)
    assert fake_tools.calls() == [
        LIST,
        NEED_RELOAD,
        SHOW,
        ["nixos-container", "start", "h-alice"],
        SHOW,
    ]
    assert container_backend.is_running("alice")
    assert container_backend.container_name("alice") == "h-alice"

    fake_tools.clear()
    await container_backend.start(spec)  # running already
    assert fake_tools.calls() == [LIST, NEED_RELOAD, SHOW]

    fake_tools.journal(UNIT, ["nspawn: container h-alice exited"])
    fake_tools.clear()
    await container_backend.stop(spec)
    assert fake_tools.calls() == [
        SHOW,
        ["nixos-container", "stop", "h-alice"],
        SHOW,
        ["journalctl", "-M", "h-alice", "-n", "20", "--no-pager"],  # stopped: fails
        ["journalctl", "-u", UNIT, "-n", "20", "--no-pager"],
    ]
    exit_ = container_backend.exits.get_nowait()
    assert (exit_.agent, exit_.exit_status, exit_.signal, exit_.unit) == ("alice", 0, None, UNIT)
    assert exit_.last_log_lines == ("nspawn: container h-alice exited",)
    assert not container_backend.is_running("alice")

    fake_tools.clear()
    await container_backend.stop(spec)
    assert fake_tools.calls() == [SHOW]
    assert container_backend.exits.empty()


async def test_start_creates_a_missing_container(
    container_backend: ContainerBackend, fake_tools: FakeTools, make_spec: SpecMaker
) -> None:
    await container_backend.start(make_spec())
    assert fake_tools.calls()[:3] == [LIST, CREATE, RELOAD]
    assert ["nixos-container", "start", "h-alice"] in fake_tools.calls()


async def test_a_running_container_is_adopted_not_restarted(
    container_backend: ContainerBackend, fake_tools: FakeTools, make_spec: SpecMaker
) -> None:
    """After a c0re restart the container is still up: start takes it over."""
    spec = make_spec()
    await container_backend.create(spec)
    fake_tools.set_unit("h-alice", ActiveState="active", SubState="running", InvocationID="i1")
    await container_backend.start(spec)
    assert ["nixos-container", "start", "h-alice"] not in fake_tools.calls()
    assert container_backend.is_running("alice")


async def test_start_names_a_missing_bind_source(
    container_backend: ContainerBackend,
    fake_tools: FakeTools,
    make_spec: SpecMaker,
    state: StateDir,
) -> None:
    state.credentials_file(agent_role("alice"), HIVE).unlink()
    with pytest.raises(BackendError, match=r"agent-alice\.json is missing"):
        await container_backend.start(make_spec())
    assert ["nixos-container", "start", "h-alice"] not in fake_tools.calls()


@pytest.mark.parametrize(
    ("props", "status", "signal"),
    [
        ({"Result": "signal", "ExecMainCode": "2", "ExecMainStatus": "9"}, None, "SIGKILL"),
        ({"Result": "exit-code", "ExecMainCode": "1", "ExecMainStatus": "3"}, 3, None),
    ],
)
async def test_a_container_that_stops_on_its_own_is_reported(
    watched: ContainerBackend,
    fake_tools: FakeTools,
    make_spec: SpecMaker,
    props: dict[str, str],
    status: int | None,
    signal: str | None,
) -> None:
    container_backend = watched
    await container_backend.start(make_spec())
    fake_tools.journal(UNIT, [f"line {i}" for i in range(30)])
    fake_tools.set_unit("h-alice", ActiveState="failed", SubState="failed", **props)
    exit_ = await next_exit(container_backend.exits, timeout=5.0)
    assert (exit_.agent, exit_.exit_status, exit_.signal, exit_.unit) == (
        "alice",
        status,
        signal,
        UNIT,
    )
    assert exit_.last_log_lines == tuple(f"line {i}" for i in range(10, 30))
    assert not container_backend.is_running("alice")


async def test_a_restart_behind_c0res_back_is_an_exit(
    watched: ContainerBackend, fake_tools: FakeTools, make_spec: SpecMaker
) -> None:
    container_backend = watched
    await container_backend.start(make_spec())
    fake_tools.set_unit("h-alice", InvocationID="another-run")
    exit_ = await next_exit(container_backend.exits, timeout=5.0)
    assert exit_.unit == UNIT
    assert container_backend.is_running("alice")  # it is up, in its new run


# ---------------------------------------------------------------- rebuild, destroy, logs


async def test_rebuild_updates_then_restarts(
    container_backend: ContainerBackend, fake_tools: FakeTools, make_spec: SpecMaker
) -> None:
    spec = make_spec()
    await container_backend.start(spec)
    fake_tools.clear()
    await container_backend.rebuild(spec)
    verbs = [call[1] for call in fake_tools.calls() if call[0] == "nixos-container"]
    assert verbs == ["list", "update", "stop", "list", "start"]
    assert ["nixos-container", "update", "h-alice", "--flake", "/etc/hive#alice"] in (
        fake_tools.calls()
    )
    assert container_backend.exits.get_nowait().exit_status == 0
    assert container_backend.is_running("alice")


async def test_rebuild_of_a_prebuilt_system_sets_the_profile(
    fake_tools: FakeTools, make_spec: SpecMaker, state: StateDir, tmp_path: Path
) -> None:
    system = ContainerSystem.system_path("/nix/store/abc-system")
    backend = make_container_backend(fake_tools, state, tmp_path, config_for=lambda _: system)
    await backend.create(make_spec())
    await backend.rebuild(make_spec())
    profile = str(tmp_path / "profiles" / "h-alice" / "system")
    assert ["nix-env", "-p", profile, "--set", "/nix/store/abc-system"] in fake_tools.calls()
    await backend.aclose()


async def test_destroy_removes_the_container_and_drop_in_but_not_the_dirs(
    container_backend: ContainerBackend,
    fake_tools: FakeTools,
    make_spec: SpecMaker,
    state: StateDir,
    tmp_path: Path,
) -> None:
    spec = make_spec()
    await container_backend.start(spec)
    (state.agent_claude("alice") / ".credentials.json").write_text("{}")
    fake_tools.clear()
    await container_backend.destroy(spec)
    nc = [call for call in fake_tools.calls() if call[0] == "nixos-container"]
    assert nc == [
        ["nixos-container", "stop", "h-alice"],
        LIST,
        ["nixos-container", "destroy", "h-alice"],
    ]
    assert fake_tools.calls()[-1] == RELOAD
    assert not fake_tools.conf("h-alice").exists()
    assert not dropin_path(tmp_path).exists()
    assert (state.agent_claude("alice") / ".credentials.json").exists()
    assert state.agent_state("alice").is_dir()

    fake_tools.clear()
    await container_backend.destroy(spec)
    assert fake_tools.calls() == [SHOW, LIST]


async def test_log_lines_come_from_the_journal_bounded(
    container_backend: ContainerBackend, fake_tools: FakeTools, make_spec: SpecMaker
) -> None:
    await container_backend.start(make_spec())
    fake_tools.journal("h-alice", ["one", "z" * (2 * LINE_MAX), "three"])
    fake_tools.clear()
    assert await container_backend.log_lines("alice", 2) == ["z" * LINE_MAX + "...", "three"]
    await container_backend.log_lines("alice", 10**6)
    assert fake_tools.calls() == [
        ["journalctl", "-M", "h-alice", "-n", "2", "--no-pager"],
        ["journalctl", "-M", "h-alice", "-n", "2000", "--no-pager"],
    ]
    assert await container_backend.log_lines("alice", 0) == []
    await container_backend.stop(make_spec())
    assert await container_backend.log_lines("alice") == []  # -u: "-- No entries --"


# ---------------------------------------------------------------- errors


async def test_a_failing_command_is_one_line_naming_it(
    container_backend: ContainerBackend, fake_tools: FakeTools, make_spec: SpecMaker
) -> None:
    fake_tools.fail(
        "nixos-container",
        "create",
        "building the system...\nerror: flake '/etc/hive' does not provide attribute 'alice'",
    )
    with pytest.raises(BackendError) as info:
        await container_backend.create(make_spec())
    assert str(info.value) == (
        "nixos-container create h-alice --flake '/etc/hive#alice' failed "
        "(exited with status 1): error: flake '/etc/hive' does not provide attribute 'alice'"
    )


async def test_a_missing_tool_is_named(
    fake_tools: FakeTools, make_spec: SpecMaker, state: StateDir, tmp_path: Path
) -> None:
    backend = make_container_backend(
        fake_tools, state, tmp_path, tools=Tools(nixos_container="no-such-nixos-container")
    )
    with pytest.raises(BackendError, match="no-such-nixos-container not found on PATH"):
        await backend.create(make_spec())


def test_unit_state_reads_systemctl_show() -> None:
    state = UnitState.parse(
        "ActiveState=failed\nSubState=failed\nResult=core-dump\nExecMainCode=3\n"
        "ExecMainStatus=11\nInvocationID=abc\n"
    )
    assert (state.down, state.up, state.outcome()) == (True, False, (None, "SIGSEGV"))
    assert UnitState.parse("ActiveState=activating\nSubState=auto-restart\n").up is False
    assert UnitState.parse("ActiveState=active\nExecMainStatus=junk\n").status == 0
