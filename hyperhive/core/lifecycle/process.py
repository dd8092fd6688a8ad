"""The process backend: each agent's harness is a local child process of c0re.

    backend = ProcessBackend(cfg)
    await backend.start(spec)    # `hyperhive harness --agent alice`, output in harness.log
    exit = await backend.exits.get()

- **The command** is `cfg.harness_command` with every `{agent}` replaced by the
  name. A bare `hyperhive` as the program means the console script next to the
  running interpreter, so it works without the venv on PATH.
- **Environment**: c0re's own, plus `HYPERHIVE_AGENT`, `HYPERHIVE_HIVE`,
  `HYPERHIVE_STATE_DIR`, `HYPERHIVE_NATS_URL`, `HYPERHIVE_NATS_CREDENTIALS` (the
  agent's own `agent-<name>.json`, never c0re's admin file) and
  `CLAUDE_CONFIG_DIR` (the agent's claude dir), then `spec.env`. The working dir
  is the agent's state dir (what `/state` is in a container).
- **Output**: stdout and stderr appended to `<state>/agents/<name>/harness.log` (0600).
- **Dies with c0re**: `PR_SET_PDEATHSIG` (`procs.die_with_parent`). Linux sends it
  when the *thread* that forked exits, so the fork happens right here in the
  coroutine, on the event loop's thread, which is c0re's main thread (never
  `asyncio.to_thread`). Forked from another thread, the child is not tied.
- **Own session and process group**: a stop signals the harness and whatever it
  started (claude, its tools); what is left of the group when the harness has
  exited is killed, so nothing runs on without it.
- **Exits**: a task per child awaits its pidfd (`procs.wait_exit`, no polling) and
  puts an `Exit` on `exits` as soon as it ends, with the last lines of
  harness.log. Every exit is reported, asked for (`stop`) or not: c0re decides.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from hyperhive.config import HiveConfig
from hyperhive.core.lifecycle import AgentSpec, Exit
from hyperhive.core.lifecycle.common import (
    EXIT_LOG_LINES,
    ensure_agent_dirs,
    signal_name,
    tail_file,
)
from hyperhive.errors import BackendError
from hyperhive.names import check_agent
from hyperhive.procs import die_with_parent, wait_exit
from hyperhive.statedir import StateDir

log = logging.getLogger("hyperhive.core.lifecycle")

STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
KILL_WAIT = 10.0  # seconds a SIGKILLed harness gets to be reaped before stop gives up
LOG_MODE = 0o600
HYPERHIVE_PROGRAM = "hyperhive"


def harness_argv(command: tuple[str, ...] | list[str], agent: str) -> list[str]:
    """The harness command of `agent`: `{agent}` replaced, a bare `hyperhive` made absolute."""
    argv = [arg.replace("{agent}", check_agent(agent)) for arg in command]
    if not argv:
        raise BackendError("harness_command is empty: it must name a program")
    if argv[0] == HYPERHIVE_PROGRAM:
        argv[0] = str(Path(sys.executable).parent / HYPERHIVE_PROGRAM)
    return argv


def harness_env(spec: AgentSpec, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The harness's environment: `base` (c0re's own), the hive's variables, `spec.env`."""
    env = dict(os.environ if base is None else base)
    env.update(
        HYPERHIVE_AGENT=spec.name,
        HYPERHIVE_HIVE=spec.hive,
        HYPERHIVE_STATE_DIR=str(spec.state.root),
        HYPERHIVE_NATS_URL=spec.nats_url,
        HYPERHIVE_NATS_CREDENTIALS=str(spec.credentials),
        CLAUDE_CONFIG_DIR=str(spec.state.agent_claude(spec.name)),
    )
    env.update(spec.env)
    return env


def _tied_to(parent: int) -> Callable[[], None]:
    """A preexec_fn: die with the parent, and at once if it is already gone.

    PR_SET_PDEATHSIG set after the parent died (between fork and prctl) never
    fires; the child sees a new parent pid and leaves instead.
    """

    def preexec() -> None:
        die_with_parent()
        if os.getppid() != parent:
            os._exit(1)

    return preexec


@dataclass(eq=False)
class _Child:
    spec: AgentSpec
    proc: subprocess.Popen[bytes]
    watcher: asyncio.Task[None] | None = None


class ProcessBackend:
    """Agents' harnesses as child processes of c0re (any Linux; `hyperhive up`)."""

    name = "process"

    def __init__(
        self,
        cfg: HiveConfig,
        *,
        stop_grace: float = STOP_GRACE,
        exit_log_lines: int = EXIT_LOG_LINES,
    ) -> None:
        self.cfg = cfg
        self.stop_grace = stop_grace
        self.exit_log_lines = exit_log_lines
        self.exits: asyncio.Queue[Exit] = asyncio.Queue()
        self._children: dict[str, _Child] = {}
        self._states: dict[str, StateDir] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    # ---------------------------------------------------------------- the protocol

    def container_name(self, agent: str) -> str | None:
        return None

    def is_running(self, agent: str) -> bool:
        child = self._children.get(agent)
        return child is not None and child.proc.returncode is None

    def pid(self, agent: str) -> int | None:
        """The harness's pid (also its process group and session), or None."""
        child = self._children.get(agent)
        return child.proc.pid if child is not None and child.proc.returncode is None else None

    async def create(self, spec: AgentSpec) -> None:
        async with self._lock(spec.name):
            self._create(spec)

    async def start(self, spec: AgentSpec) -> None:
        async with self._lock(spec.name):
            self._start(spec)

    async def stop(self, spec: AgentSpec) -> None:
        async with self._lock(spec.name):
            await self._stop(spec.name)

    async def rebuild(self, spec: AgentSpec) -> None:
        """A process has no config to apply: stop it and start it again."""
        async with self._lock(spec.name):
            await self._stop(spec.name)
            self._start(spec)

    async def destroy(self, spec: AgentSpec) -> None:
        """Stop it if running and forget it; its dirs and harness.log stay."""
        async with self._lock(spec.name):
            await self._stop(spec.name)
            self._states.pop(spec.name, None)

    async def log_lines(self, agent: str, lines: int = 200) -> list[str]:
        state = self._states.get(agent) or StateDir.at(self.cfg.state_dir)
        return tail_file(state.harness_log(agent), lines)

    async def aclose(self) -> None:
        """Stop every child (their exits are still reported), then stop watching."""
        children = list(self._children.values())
        await asyncio.gather(*(self._terminate(c) for c in children), return_exceptions=True)
        watchers = [c.watcher for c in children if c.watcher is not None]
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)

    # ---------------------------------------------------------------- inside

    def _lock(self, agent: str) -> asyncio.Lock:
        return self._locks.setdefault(agent, asyncio.Lock())

    def _create(self, spec: AgentSpec) -> None:
        ensure_agent_dirs(spec.state, spec.name)
        self._states[spec.name] = spec.state

    def _start(self, spec: AgentSpec) -> None:
        if self.is_running(spec.name):
            return
        self._create(spec)
        argv = harness_argv(self.cfg.harness_command, spec.name)
        env = harness_env(spec)
        path = spec.state.harness_log(spec.name)
        main_thread = threading.current_thread() is threading.main_thread()
        if not main_thread:
            log.warning(
                "starting the harness of %s outside the main thread: it will not die with c0re",
                spec.name,
            )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, LOG_MODE)
        except OSError as exc:
            raise BackendError(f"cannot open {path}: {exc.strerror or exc}") from None
        try:
            os.fchmod(fd, LOG_MODE)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            os.write(fd, f"=== hyperhive: {stamp} starting {shlex.join(argv)}\n".encode())
            # Popen right here, on the loop's (main) thread: see the module docstring.
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=subprocess.STDOUT,
                cwd=spec.state.agent_state(spec.name),
                env=env,
                start_new_session=True,
                preexec_fn=_tied_to(os.getpid()) if main_thread else None,
            )
        except OSError as exc:
            raise BackendError(
                f"cannot start the harness of {spec.name} ({shlex.join(argv)}): "
                f"{exc.strerror or exc}"
            ) from None
        finally:
            os.close(fd)
        child = _Child(spec, proc)
        child.watcher = asyncio.create_task(self._watch(child), name=f"harness-{spec.name}")
        self._children[spec.name] = child
        log.info("started the harness of %s (pid %d)", spec.name, proc.pid)

    async def _watch(self, child: _Child) -> None:
        """Wait for the child to exit; report it; kill what is left of its group."""
        status = await wait_exit(child.proc)
        # Its group may hold what it started (claude, tools): nothing runs on without it.
        # While members are left the group id stays taken; once none are, the kernel
        # hands out pids cyclically, so the id is not some new group's in the meantime.
        _signal_group(child.proc.pid, signal.SIGKILL)
        name = child.spec.name
        if self._children.get(name) is child:
            del self._children[name]
        try:
            lines = tuple(tail_file(child.spec.state.harness_log(name), self.exit_log_lines))
        except BackendError as exc:
            lines = (str(exc),)
        exit_ = Exit(
            agent=name,
            exit_status=status if status >= 0 else None,
            signal=signal_name(-status) if status < 0 else None,
            unit=None,
            last_log_lines=lines,
        )
        log.info("the harness of %s exited (status %s, signal %s)", name, status, exit_.signal)
        self.exits.put_nowait(exit_)

    async def _stop(self, agent: str) -> None:
        child = self._children.get(agent)
        if child is not None:
            await self._terminate(child)

    async def _terminate(self, child: _Child) -> None:
        """SIGTERM to the group, SIGKILL after the grace; return once its exit is reported."""
        watcher = child.watcher
        assert watcher is not None
        if child.proc.returncode is None:  # not reaped, so the pid is still ours
            _signal_group(child.proc.pid, signal.SIGTERM)
        done, _ = await asyncio.wait({watcher}, timeout=self.stop_grace)
        if done:
            return
        if child.proc.returncode is None:
            _signal_group(child.proc.pid, signal.SIGKILL)
        done, _ = await asyncio.wait({watcher}, timeout=KILL_WAIT)
        if not done:
            raise BackendError(
                f"the harness of {child.spec.name} (pid {child.proc.pid}) did not exit "
                f"{KILL_WAIT:.0f}s after SIGKILL"
            )


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
