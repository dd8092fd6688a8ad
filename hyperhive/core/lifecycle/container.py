"""The nixos-container backend: each agent runs in its own NixOS container, `h-<name>`.

    backend = ContainerBackend(cfg, config_for=prebuilt_system)
    await backend.start(spec)    # nixos-container create/start h-alice

It drives `nixos-container`, `systemctl`, `journalctl` (and `nix-env` to set a
prebuilt system on rebuild), found on PATH (the NixOS service's PATH holds
`/run/current-system/sw`), each run as an argv list with
`asyncio.create_subprocess_exec`, never through a shell. A command that fails
is a `BackendError` naming the command and the last line of its stderr.

What the NixOS/nspawn gotchas require, and where it is done:

- **Names**: `nixos-container create` refuses container names longer than 11
  characters (its host-side veth, `ve-<name>`, has to fit the kernel's
  15-character interface names) and allows only `[a-zA-Z0-9_-]`. With the `h-`
  prefix an agent name may have at most 9 characters; longer ones are refused
  here, before anything is created (`machine_name`).
- **No `--bind` on the CLI**, and `/run/systemd/nspawn/*.nspawn` files are ignored:
  the binds go into `EXTRA_NSPAWN_FLAGS` of `<conf_dir>/h-<name>.conf`, which the
  container's start script expands unquoted, so no bind path may hold whitespace,
  `:` or shell pattern characters (refused).
- **`create` assigns `HOST_ADDRESS`/`LOCAL_ADDRESS`**, and any address set makes the
  start script add `--network-veth` (a private netns: the agent's web UI and the
  host's loopback NATS become unreachable). The `.conf` is rewritten after every
  create: the address/bridge/port fields emptied, `PRIVATE_NETWORK=0`, every other
  line kept as it was.
- **Per-agent claude dir and state dir** (rw binds to `/root/.claude` and `/state`),
  the agent's NATS credentials and the host's hive.toml (ro); the host sides are
  outside the container root, so `nixos-container destroy` never touches them.
- **Resource limits**: a drop-in `container@h-<name>.service.d/hyperhive-limits.conf`
  (`MemoryMax=`, `CPUQuota=`, and `Restart=no`: the container@ unit restarts on
  failure by itself, but whether a crashed agent comes back is c0re's decision,
  `restart_crashed`), then `systemctl daemon-reload`.

Containers are not children of c0re: they keep running when c0re stops, and a
`start` after a c0re restart finds them running and adopts them. A watcher polls
`systemctl show container@h-<name>.service` every `poll_interval` seconds for the
agents believed running and reports an `Exit` when one stopped (or was restarted
behind c0re's back); `stop` reports its own exit too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shlex
import shutil
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hyperhive.config import HiveConfig
from hyperhive.core.lifecycle import AgentSpec, Exit
from hyperhive.core.lifecycle.common import (
    EXIT_LOG_LINES,
    MAX_LOG_LINES,
    bound_line,
    bound_lines,
    clamp_lines,
    ensure_agent_dirs,
    signal_name,
)
from hyperhive.errors import BackendError
from hyperhive.files import write_atomic
from hyperhive.names import check_agent, show
from hyperhive.procs import describe_status

log = logging.getLogger("hyperhive.core.lifecycle")

PREFIX = "h-"
NIXOS_CONTAINER_NAME_MAX = 11  # nixos-container.pl: "container name ... is too long"
AGENT_NAME_MAX = NIXOS_CONTAINER_NAME_MAX - len(PREFIX)

CONF_DIR = Path("/etc/nixos-containers")  # /etc/containers before stateVersion 22.05
SYSTEMD_DIR = Path("/etc/systemd/system")
PROFILES_DIR = Path("/nix/var/nix/profiles/per-container")
PREBUILT_DIR = Path("/etc/hyperhive/systems")  # declared agents' systems (nix/agents.nix)
HOST_HIVE_TOML = Path("/etc/hyperhive/hive.toml")
DROPIN_NAME = "hyperhive-limits.conf"

# Where things are inside the container (nix/lib.nix containerPaths).
CONTAINER_STATE = "/state"
CONTAINER_CLAUDE = "/root/.claude"
CONTAINER_CREDENTIALS = "/etc/hyperhive/nats-credentials.json"
CONTAINER_HIVE_TOML = "/etc/hyperhive/hive.toml"

# nix/lib.nix containerConfCleared / containerConfSet (the contract in container.json).
CONF_CLEARED = (
    "HOST_ADDRESS",
    "LOCAL_ADDRESS",
    "HOST_ADDRESS6",
    "LOCAL_ADDRESS6",
    "HOST_BRIDGE",
    "HOST_PORT",
)
CONF_SET = {"PRIVATE_NETWORK": "0"}
NSPAWN_FLAGS_KEY = "EXTRA_NSPAWN_FLAGS"

POLL_INTERVAL = 1.0
SHOW_TIMEOUT = 30.0  # systemctl show, nixos-container list, journalctl, daemon-reload
COMMAND_TIMEOUT = 600.0  # start and stop (a container's TimeoutStartSec is 1 min by default)
UNIT_PROPERTIES = "ActiveState,SubState,Result,ExecMainCode,ExecMainStatus,InvocationID"
UP_STATES = frozenset({"active", "activating", "reloading"})
DOWN_STATES = frozenset({"inactive", "failed"})
CLD_EXITED, CLD_KILLED, CLD_DUMPED = "1", "2", "3"  # ExecMainCode

# Safe in EXTRA_NSPAWN_FLAGS: expanded unquoted (word splitting, globbing), split on ':'.
_BIND_PATH_RE = re.compile(r"/[A-Za-z0-9_./@+=,-]*")
_MEMORY_RE = re.compile(r"\d+[KMGT]?|\d+%|infinity")
_CPU_RE = re.compile(r"\d+%")
_NO_ENTRIES = "-- No entries --"


def machine_name(agent: str) -> str:
    """`h-<agent>`, refused (`BackendError`) when nixos-container would refuse it."""
    check_agent(agent)
    if len(agent) > AGENT_NAME_MAX:
        raise BackendError(
            f"agent name {show(agent)} is too long for the nixos-container backend: its "
            f"container is {PREFIX}<name> and nixos-container allows at most "
            f"{NIXOS_CONTAINER_NAME_MAX} characters (the veth ve-<container> must fit the "
            f"kernel's 15), so at most {AGENT_NAME_MAX}: rename the agent"
        )
    return PREFIX + agent


def unit_name(machine: str) -> str:
    return f"container@{machine}.service"


@dataclass(frozen=True)
class ContainerSystem:
    """Where one agent's container system comes from.

    `flake("/etc/hive#alice")` (nixos-container builds
    `nixosConfigurations.alice`), `config_file(path)` (a NixOS module the
    container's configuration.nix imports) or `system_path(path)` (a built
    system, e.g. `/etc/hyperhive/systems/<name>` of a declared agent).
    """

    kind: Literal["flake", "config-file", "system-path"]
    ref: str

    @classmethod
    def flake(cls, ref: str) -> ContainerSystem:
        if "#" not in ref or ref.startswith("#") or ref.endswith("#"):
            raise BackendError(f"flake reference {ref!r}: use <flake>#<attr>")
        return cls("flake", ref)

    @classmethod
    def config_file(cls, path: str | Path) -> ContainerSystem:
        return cls("config-file", str(path))

    @classmethod
    def system_path(cls, path: str | Path) -> ContainerSystem:
        return cls("system-path", str(path))

    def args(self) -> list[str]:
        """The options of `nixos-container create` (and, but for system-path, `update`)."""
        return [f"--{self.kind}", self.ref]


def prebuilt_system(agent: str) -> ContainerSystem:
    """A declared agent's system, built with the host (`/etc/hyperhive/systems/<name>`)."""
    return ContainerSystem.system_path(PREBUILT_DIR / check_agent(agent))


@dataclass(frozen=True)
class Tools:
    """The programs the backend runs: names looked up on PATH when used, or paths."""

    nixos_container: str = "nixos-container"
    systemctl: str = "systemctl"
    journalctl: str = "journalctl"
    nix_env: str = "nix-env"


@dataclass(frozen=True)
class UnitState:
    """What `systemctl show` says of a container@ unit."""

    active: str  # ActiveState
    sub: str  # SubState
    result: str
    code: str  # ExecMainCode: 1 exited, 2 killed, 3 dumped, 0 not run
    status: int
    invocation: str

    @classmethod
    def parse(cls, text: str) -> UnitState:
        props = dict(
            line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "="
        )
        try:
            status = int(props.get("ExecMainStatus") or 0)
        except ValueError:
            status = 0
        return cls(
            active=props.get("ActiveState", ""),
            sub=props.get("SubState", ""),
            result=props.get("Result", ""),
            code=props.get("ExecMainCode", ""),
            status=status,
            invocation=props.get("InvocationID", ""),
        )

    @property
    def up(self) -> bool:
        return self.active in UP_STATES and self.sub != "auto-restart"

    @property
    def down(self) -> bool:
        return self.active in DOWN_STATES

    def outcome(self) -> tuple[int | None, str | None]:
        """(exit_status, signal) of the unit's last main process."""
        if self.code == CLD_EXITED:
            return self.status, None
        if self.code in (CLD_KILLED, CLD_DUMPED):
            return None, signal_name(self.status)
        return None, None


def rewrite_conf(text: str, values: Mapping[str, str]) -> str:
    """`text` (a container .conf) with each key of `values` set; every other line kept.

    A key's first line is replaced in place and its repeats dropped; a key the
    file lacks is appended.
    """
    out: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines():
        key = line.split("=", 1)[0].strip() if "=" in line else ""
        if key in values and not line.lstrip().startswith("#"):
            if key not in seen:
                out.append(f"{key}={values[key]}")
                seen.add(key)
            continue
        out.append(line)
    out.extend(f"{key}={value}" for key, value in values.items() if key not in seen)
    return "\n".join(out) + "\n"


def limits_dropin(memory_max: str, cpu_quota: str) -> str:
    return (
        "# Written by hyperhive (c0re): the limits of one agent's container.\n"
        "[Service]\n"
        f"MemoryMax={memory_max}\n"
        f"CPUQuota={cpu_quota}\n"
        "# c0re decides whether a crashed agent restarts (restart_crashed), not systemd.\n"
        "Restart=no\n"
    )


def _last_line(data: bytes) -> str:
    lines = [line.strip() for line in data.decode(errors="replace").splitlines()]
    lines = [line for line in lines if line]
    return bound_line(lines[-1])[:500] if lines else "no output"


class ContainerBackend:
    """Agents in nixos-containers `h-<name>` (NixOS hosts; c0re runs as root)."""

    name = "nixos-container"

    def __init__(
        self,
        cfg: HiveConfig,
        *,
        config_for: Callable[[str], ContainerSystem],
        tools: Tools = Tools(),
        conf_dir: Path = CONF_DIR,
        systemd_dir: Path = SYSTEMD_DIR,
        profiles_dir: Path = PROFILES_DIR,
        hive_toml: Path | None = HOST_HIVE_TOML,
        bind_credentials: bool = True,
        memory_max: str = "4G",
        cpu_quota: str = "200%",
        poll_interval: float = POLL_INTERVAL,
        command_timeout: float = COMMAND_TIMEOUT,
        exit_log_lines: int = EXIT_LOG_LINES,
    ) -> None:
        if not _MEMORY_RE.fullmatch(memory_max):
            raise BackendError(
                f"memory_max {memory_max!r}: use bytes with K/M/G/T, a %, or infinity"
            )
        if not _CPU_RE.fullmatch(cpu_quota):
            raise BackendError(f"cpu_quota {cpu_quota!r}: use a percentage like 200%")
        self.cfg = cfg
        self.config_for = config_for
        self.tools = tools
        self.conf_dir = conf_dir
        self.systemd_dir = systemd_dir
        self.profiles_dir = profiles_dir
        self.hive_toml = hive_toml
        self.bind_credentials = bind_credentials
        self.memory_max = memory_max
        self.cpu_quota = cpu_quota
        self.poll_interval = poll_interval
        self.command_timeout = command_timeout
        self.exit_log_lines = exit_log_lines
        self.exits: asyncio.Queue[Exit] = asyncio.Queue()
        self._running: dict[str, str] = {}  # agent -> InvocationID of the run we watch
        self._locks: dict[str, asyncio.Lock] = {}
        self._watcher: asyncio.Task[None] | None = None

    # ---------------------------------------------------------------- the protocol

    def container_name(self, agent: str) -> str | None:
        return machine_name(agent)

    def is_running(self, agent: str) -> bool:
        return agent in self._running

    async def create(self, spec: AgentSpec) -> None:
        async with self._lock(spec.name):
            await self._create(spec)

    async def start(self, spec: AgentSpec) -> None:
        async with self._lock(spec.name):
            await self._start(spec)

    async def stop(self, spec: AgentSpec) -> None:
        async with self._lock(spec.name):
            await self._stop(spec)

    async def rebuild(self, spec: AgentSpec) -> None:
        """Apply the agent's system again (`nixos-container update`), then restart it."""
        async with self._lock(spec.name):
            if not await self._create(spec):
                await self._update(spec)
            await self._stop(spec)
            await self._start(spec)

    async def destroy(self, spec: AgentSpec) -> None:
        """Stop and remove the container and its drop-in; the agent's dirs stay."""
        async with self._lock(spec.name):
            machine = machine_name(spec.name)
            await self._stop(spec)
            if machine in await self._list():
                await self._run([self.tools.nixos_container, "destroy", machine], None)
            dropin = self._dropin(machine)
            removed = False
            with contextlib.suppress(FileNotFoundError):
                dropin.unlink()
                removed = True
            with contextlib.suppress(OSError):
                dropin.parent.rmdir()  # only if empty: someone else's drop-ins stay
            if removed:
                await self._run([self.tools.systemctl, "daemon-reload"], SHOW_TIMEOUT)

    async def log_lines(self, agent: str, lines: int = 200) -> list[str]:
        """The container's journal (`journalctl -M`), else its unit's (nspawn's console)."""
        n = clamp_lines(lines, MAX_LOG_LINES)
        if n == 0:
            return []
        return await self._journal(machine_name(agent), n)

    async def aclose(self) -> None:
        """Stop watching. The containers keep running: a later `start` adopts them."""
        task, self._watcher = self._watcher, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ---------------------------------------------------------------- the verbs

    def _lock(self, agent: str) -> asyncio.Lock:
        return self._locks.setdefault(agent, asyncio.Lock())

    async def _create(self, spec: AgentSpec) -> bool:
        """Converge: container, .conf, drop-in. True if the container was created now."""
        machine = machine_name(spec.name)
        ensure_agent_dirs(spec.state, spec.name)
        flags = self._nspawn_flags(spec)
        created = False
        if machine not in await self._list():
            system = self.config_for(spec.name)
            await self._run([self.tools.nixos_container, "create", machine, *system.args()], None)
            created = True
        self._write_conf(machine, flags)
        changed = self._write_dropin(machine)
        if changed or await self._needs_reload(machine):
            await self._run([self.tools.systemctl, "daemon-reload"], SHOW_TIMEOUT)
        return created

    async def _start(self, spec: AgentSpec) -> None:
        machine = machine_name(spec.name)
        await self._create(spec)
        self._check_bind_sources(spec)
        state = await self._show(machine)
        if not state.up:
            await self._run([self.tools.nixos_container, "start", machine], self.command_timeout)
            state = await self._show(machine)
        self._running[spec.name] = state.invocation
        self._ensure_watcher()

    async def _stop(self, spec: AgentSpec) -> None:
        machine = machine_name(spec.name)
        state = await self._show(machine)
        if not state.down:  # a failing stop leaves it watched: it may well still run
            await self._run([self.tools.nixos_container, "stop", machine], self.command_timeout)
            state = await self._show(machine)
        elif spec.name not in self._running:
            return  # not running, and its last exit is reported already (or predates us)
        self._running.pop(spec.name, None)
        self.exits.put_nowait(await self._exit(spec.name, state))

    async def _update(self, spec: AgentSpec) -> None:
        machine = machine_name(spec.name)
        system = self.config_for(spec.name)
        if system.kind == "system-path":  # `update` has no --system-path: set the profile
            profile = self.profiles_dir / machine / "system"
            await self._run([self.tools.nix_env, "-p", str(profile), "--set", system.ref], None)
        else:
            await self._run([self.tools.nixos_container, "update", machine, *system.args()], None)

    # ---------------------------------------------------------------- files

    def _nspawn_flags(self, spec: AgentSpec) -> str:
        name = spec.name
        binds = [
            ("--bind", spec.state.agent_state(name), CONTAINER_STATE),
            ("--bind", spec.state.agent_claude(name), CONTAINER_CLAUDE),
        ]
        if self.bind_credentials:
            binds.append(("--bind-ro", spec.credentials, CONTAINER_CREDENTIALS))
        if self.hive_toml is not None:
            binds.append(("--bind-ro", self.hive_toml, CONTAINER_HIVE_TOML))
        for _, source, _ in binds:
            if not _BIND_PATH_RE.fullmatch(str(source)):
                raise BackendError(
                    f"cannot bind {str(source)!r} into {machine_name(name)}: nixos-container "
                    "expands its nspawn flags unquoted, so the path must be absolute, without "
                    "whitespace, ':' or shell pattern characters"
                )
        return " ".join(f"{flag}={source}:{target}" for flag, source, target in binds)

    def _check_bind_sources(self, spec: AgentSpec) -> None:
        """nspawn fails on a missing bind source: say which, and what makes it."""
        files = []
        if self.bind_credentials:
            files.append(spec.credentials)
        if self.hive_toml is not None:
            files.append(self.hive_toml)
        for path in files:
            if not path.is_file():
                raise BackendError(
                    f"cannot start {machine_name(spec.name)}: {path} is missing (it is "
                    f"bind-mounted into the container; `hyperhive credentials --hive "
                    f"{spec.hive} --agent {spec.name}` makes the credentials)"
                )

    def _conf(self, machine: str) -> Path:
        return self.conf_dir / f"{machine}.conf"

    def _dropin(self, machine: str) -> Path:
        return self.systemd_dir / f"{unit_name(machine)}.d" / DROPIN_NAME

    def _write_conf(self, machine: str, flags: str) -> None:
        path = self._conf(machine)
        if path.is_symlink():
            raise BackendError(
                f"{path} is a link (a declarative container?): hyperhive manages only the "
                "containers it creates"
            )
        try:
            text = path.read_text(encoding="utf-8")
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError as exc:
            raise BackendError(f"cannot read {path}: {exc.strerror or exc}") from None
        values = {key: "" for key in CONF_CLEARED}
        values.update(CONF_SET)
        values[NSPAWN_FLAGS_KEY] = f'"{flags}"'
        new = rewrite_conf(text, values)
        if new != text:
            self._write(path, new, mode)

    def _write_dropin(self, machine: str) -> bool:
        path = self._dropin(machine)
        content = limits_dropin(self.memory_max, self.cpu_quota)
        with contextlib.suppress(OSError):
            if path.read_text(encoding="utf-8") == content:
                return False
        try:
            path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendError(f"cannot create {path.parent}: {exc.strerror or exc}") from None
        self._write(path, content, 0o644)
        return True

    @staticmethod
    def _write(path: Path, text: str, mode: int) -> None:
        try:
            write_atomic(path, text.encode(), mode)
        except OSError as exc:
            raise BackendError(f"cannot write {path}: {exc.strerror or exc}") from None

    # ---------------------------------------------------------------- asking systemd

    async def _list(self) -> set[str]:
        out = await self._run([self.tools.nixos_container, "list"], SHOW_TIMEOUT)
        return {line.strip() for line in out.splitlines() if line.strip()}

    async def _show(self, machine: str) -> UnitState:
        argv = [self.tools.systemctl, "show", unit_name(machine), "-p", UNIT_PROPERTIES]
        return UnitState.parse(await self._run(argv, SHOW_TIMEOUT))

    async def _needs_reload(self, machine: str) -> bool:
        argv = [self.tools.systemctl, "show", unit_name(machine), "-p", "NeedDaemonReload"]
        return "NeedDaemonReload=yes" in (await self._run(argv, SHOW_TIMEOUT)).split()

    async def _journal(self, machine: str, n: int) -> list[str]:
        """The container's own journal; if it can't be read (stopped), its unit's."""
        tail = ["-n", str(n), "--no-pager"]
        try:
            out = await self._run([self.tools.journalctl, "-M", machine, *tail], SHOW_TIMEOUT)
        except BackendError as first:
            try:
                argv = [self.tools.journalctl, "-u", unit_name(machine), *tail]
                out = await self._run(argv, SHOW_TIMEOUT)
            except BackendError:
                raise first from None
        lines = [line for line in out.splitlines() if line != _NO_ENTRIES]
        return bound_lines(lines[-n:])

    async def _exit(self, agent: str, state: UnitState) -> Exit:
        status, sig = state.outcome()
        try:
            lines = tuple(await self._journal(machine_name(agent), self.exit_log_lines))
        except BackendError as exc:
            lines = (str(exc),)
        return Exit(
            agent=agent,
            exit_status=status,
            signal=sig,
            unit=unit_name(machine_name(agent)),
            last_log_lines=lines,
        )

    # ---------------------------------------------------------------- the watcher

    def _ensure_watcher(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.create_task(self._watch(), name="container-watch")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            for agent in list(self._running):
                lock = self._lock(agent)
                if lock.locked():  # a verb is under way: it reports what it does
                    continue
                try:
                    async with lock:
                        await self._check(agent)
                except Exception as exc:
                    log.warning("watching %s: %s", machine_name(agent), exc)

    async def _check(self, agent: str) -> None:
        """Report an Exit if the run we watch is over (stopped, or restarted behind us)."""
        if agent not in self._running:
            return
        watched = self._running[agent]
        state = await self._show(machine_name(agent))
        if state.down:
            del self._running[agent]
        elif state.sub == "auto-restart":
            self._running[agent] = ""  # systemd brings it back: watch whichever run is next
        elif watched and state.invocation and state.invocation != watched:
            self._running[agent] = state.invocation
        else:
            if not watched and state.invocation:
                self._running[agent] = state.invocation
            return
        self.exits.put_nowait(await self._exit(agent, state))

    # ---------------------------------------------------------------- commands

    async def _run(self, argv: Sequence[str], timeout: float | None) -> str:
        """Run a command (no shell); its stdout, or `BackendError` with its last stderr line."""
        program = argv[0]
        exe = program if os.sep in program else shutil.which(program)
        if exe is None:
            raise BackendError(f"{program} not found on PATH (the nixos-container backend runs it)")
        command = shlex.join(argv)
        try:
            proc = await asyncio.create_subprocess_exec(
                exe,
                *argv[1:],
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise BackendError(f"cannot run {command}: {exc.strerror or exc}") from None
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            raise BackendError(f"{command}: no answer after {timeout:.0f}s") from None
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if proc.returncode != 0:
            status = describe_status(proc.returncode or 0)
            raise BackendError(f"{command} failed ({status}): {_last_line(err or out)}")
        return out.decode(errors="replace")
