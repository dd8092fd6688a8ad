"""An in-memory backend for c0re's unit tests: records calls, simulates runs and exits.

    backend = FakeBackend()
    await backend.start(spec)
    backend.crash("alice", status=3)           # an unasked exit, on `exits`
    backend.fail("start", "no room")           # the next start raises BackendError
    assert backend.calls == [("start", "alice")]

It keeps the real backends' contract: every verb idempotent, `start` creates,
`stop` reports the exit (status 0), `destroy` stops first.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hyperhive.core.lifecycle import AgentSpec, Exit
from hyperhive.core.lifecycle.common import bound_lines, clamp_lines
from hyperhive.errors import BackendError


@dataclass
class _Failure:
    message: str
    agent: str | None
    times: int | None  # None: every time


class FakeBackend:
    """A backend that runs nothing. `containers=True` names containers like the real one."""

    name = "fake"

    def __init__(self, *, containers: bool = False) -> None:
        self.containers = containers
        self.exits: asyncio.Queue[Exit] = asyncio.Queue()
        self.calls: list[tuple[str, str]] = []
        self.created: set[str] = set()
        self.running: set[str] = set()
        self.specs: dict[str, AgentSpec] = {}
        self.logs: dict[str, list[str]] = {}
        self.closed = False
        self._failures: dict[str, list[_Failure]] = {}

    # ---------------------------------------------------------------- driving it

    def fail(
        self,
        verb: str,
        message: str = "simulated failure",
        *,
        agent: str | None = None,
        times: int | None = 1,
    ) -> None:
        """Make the next `times` calls of `verb` (for `agent`, or any) raise `BackendError`."""
        self._failures.setdefault(verb, []).append(_Failure(message, agent, times))

    def crash(
        self,
        agent: str,
        status: int | None = 1,
        signal: str | None = None,
        lines: tuple[str, ...] = (),
    ) -> Exit:
        """The agent's harness died on its own: it is no longer running; an Exit is queued."""
        self.running.discard(agent)
        exit_ = Exit(
            agent=agent,
            exit_status=None if signal else status,
            signal=signal,
            unit=self._unit(agent),
            last_log_lines=lines or tuple(self.logs.get(agent, ())[-20:]),
        )
        self.exits.put_nowait(exit_)
        return exit_

    def verbs(self, agent: str) -> list[str]:
        """The verbs called for `agent`, in order."""
        return [verb for verb, name in self.calls if name == agent]

    # ---------------------------------------------------------------- the protocol

    def container_name(self, agent: str) -> str | None:
        return f"h-{agent}" if self.containers else None

    def is_running(self, agent: str) -> bool:
        return agent in self.running

    async def create(self, spec: AgentSpec) -> None:
        self._call("create", spec)
        self.created.add(spec.name)

    async def start(self, spec: AgentSpec) -> None:
        self._call("start", spec)
        self.created.add(spec.name)
        self.running.add(spec.name)

    async def stop(self, spec: AgentSpec) -> None:
        self._call("stop", spec)
        self._stop(spec.name)

    async def rebuild(self, spec: AgentSpec) -> None:
        self._call("rebuild", spec)
        self._stop(spec.name)
        self.created.add(spec.name)
        self.running.add(spec.name)

    async def destroy(self, spec: AgentSpec) -> None:
        self._call("destroy", spec)
        self._stop(spec.name)
        self.created.discard(spec.name)

    async def log_lines(self, agent: str, lines: int = 200) -> list[str]:
        self._check("log_lines", agent)
        n = clamp_lines(lines)
        return bound_lines(self.logs.get(agent, [])[-n:]) if n else []

    async def aclose(self) -> None:
        self.closed = True

    # ---------------------------------------------------------------- inside

    def _unit(self, agent: str) -> str | None:
        return f"container@h-{agent}.service" if self.containers else None

    def _call(self, verb: str, spec: AgentSpec) -> None:
        self.calls.append((verb, spec.name))
        self.specs[spec.name] = spec
        self._check(verb, spec.name)

    def _check(self, verb: str, agent: str) -> None:
        for failure in self._failures.get(verb, []):
            if failure.agent not in (None, agent):
                continue
            if failure.times is not None:
                failure.times -= 1
                if failure.times <= 0:
                    self._failures[verb].remove(failure)
            raise BackendError(f"{verb} {agent}: {failure.message}")

    def _stop(self, agent: str) -> None:
        if agent in self.running:
            self.running.discard(agent)
            self.exits.put_nowait(
                Exit(
                    agent=agent,
                    exit_status=0,
                    signal=None,
                    unit=self._unit(agent),
                    last_log_lines=tuple(self.logs.get(agent, ())[-20:]),
                )
            )
