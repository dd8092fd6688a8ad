"""Running Claude Code for one turn, and reading what it prints (stream-json).

    runner = CliRunner(binary, env=...)
    outcome = await runner.run(invocation, on_event)

The CLI prints one JSON object per line: `system` (init: the session id),
`assistant` (text and tool_use blocks), `user` (tool_result blocks), and one
final `result`. Reading is robust: a line that is not JSON is noise and skipped,
a line longer than `MAX_LINE` is cut (and marked), and EOF without a `result`
is a failed turn. Memory stays bounded whatever the CLI prints: lines are read
in bounded chunks and never buffered whole.

`ScriptedRunner` plays scripted lines in-process instead (fast unit tests);
both satisfy `Runner`, and one contract test runs over both.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

MAX_LINE = 1 << 20  # a stream-json line longer than this is cut
READ_CHUNK = 64 * 1024
CANCEL_GRACE = 5.0  # SIGINT, then SIGKILL after this


@dataclass(frozen=True)
class Invocation:
    """One turn's claude command line and input."""

    argv: list[str]
    prompt: str
    env: dict[str, str]
    cwd: str | None = None


@dataclass
class Outcome:
    """How a claude run ended."""

    result: dict[str, Any] | None = None  # the `result` line, if one came
    session_id: str | None = None
    exit_status: int | None = None
    cancelled: bool = False
    noise_lines: int = 0
    cut_lines: int = 0
    stderr_tail: str = ""
    error: str | None = None  # could not run at all (binary missing, ...)


LineHandler = Callable[[dict[str, Any]], Awaitable[None]]


class Runner(Protocol):
    async def run(self, inv: Invocation, on_line: LineHandler) -> Outcome: ...

    def cancel(self) -> bool:
        """Interrupt the running turn (SIGINT); False if none runs."""


def parse_line(raw: bytes) -> dict[str, Any] | None:
    """A stream-json object, or None for noise."""
    text = raw.strip()
    if not text.startswith(b"{"):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


async def bounded_lines(stream: asyncio.StreamReader) -> AsyncIterator[tuple[bytes, bool]]:
    """(line, was_cut) from `stream`, never holding more than MAX_LINE of one line."""
    buf = bytearray()
    cut = False
    while True:
        chunk = await stream.read(READ_CHUNK)
        if not chunk:
            if buf:
                yield bytes(buf), cut
            return
        start = 0
        while True:
            nl = chunk.find(b"\n", start)
            if nl < 0:
                room = MAX_LINE - len(buf)
                if room > 0:
                    buf += chunk[start : start + room]
                if len(chunk) - start > room:
                    cut = True
                break
            piece = chunk[start:nl]
            room = MAX_LINE - len(buf)
            buf += piece[: max(0, room)]
            yield bytes(buf), cut or len(piece) > room
            buf.clear()
            cut = False
            start = nl + 1


def find_binary(configured: str) -> str | None:
    """The claude executable: a path, or a name looked up on PATH."""
    if os.sep in configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which(configured)


class CliRunner:
    """The real Claude Code CLI, one process per turn."""

    def __init__(self, binary: str = "claude", cancel_grace: float = CANCEL_GRACE) -> None:
        self.binary = binary
        self.cancel_grace = cancel_grace
        self._proc: asyncio.subprocess.Process | None = None
        self._cancelled = False

    def cancel(self) -> bool:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return False
        self._cancelled = True
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)  # claude flushes its result and exits
        asyncio.get_running_loop().call_later(self.cancel_grace, self._kill, proc)
        return True

    def _kill(self, proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()

    async def run(self, inv: Invocation, on_line: LineHandler) -> Outcome:
        exe = find_binary(self.binary)
        if exe is None:
            return Outcome(error="claude not found: install @anthropic-ai/claude-code")
        self._cancelled = False
        try:
            proc = await asyncio.create_subprocess_exec(
                exe,
                *inv.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=inv.env,
                cwd=inv.cwd,
                start_new_session=True,
            )
        except OSError as exc:
            return Outcome(error=f"cannot run claude ({exe}): {exc.strerror or exc}")
        self._proc = proc
        assert proc.stdin is not None
        assert proc.stdout is not None
        assert proc.stderr is not None
        stderr_task = asyncio.create_task(_tail(proc.stderr))
        outcome = Outcome()
        try:
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                proc.stdin.write(inv.prompt.encode())
                await proc.stdin.drain()
                proc.stdin.close()
            async for raw, cut in bounded_lines(proc.stdout):
                if cut:
                    outcome.cut_lines += 1
                line = parse_line(raw)
                if line is None:
                    outcome.noise_lines += 1 if raw.strip() else 0
                    continue
                if line.get("type") == "result":
                    outcome.result = line
                if isinstance(line.get("session_id"), str):
                    outcome.session_id = line["session_id"]
                await on_line(line)
            outcome.exit_status = await proc.wait()
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            outcome.stderr_tail = await stderr_task
            outcome.cancelled = self._cancelled
            self._proc = None
        return outcome


async def _tail(stream: asyncio.StreamReader, keep: int = 4096) -> str:
    tail = b""
    while True:
        chunk = await stream.read(READ_CHUNK)
        if not chunk:
            return tail.decode(errors="replace")
        tail = (tail + chunk)[-keep:]


@dataclass
class ScriptedRunner:
    """A runner that plays scripted stream-json lines (one list per turn), in-process."""

    turns: list[Sequence[dict[str, Any] | bytes]] = field(default_factory=list)
    invocations: list[Invocation] = field(default_factory=list)
    hold: asyncio.Event | None = None  # set: the turn waits for it before its result
    _cancel: asyncio.Event = field(default_factory=asyncio.Event)

    def cancel(self) -> bool:
        self._cancel.set()
        return True

    async def run(self, inv: Invocation, on_line: LineHandler) -> Outcome:
        self.invocations.append(inv)
        self._cancel.clear()
        lines = list(self.turns.pop(0)) if self.turns else [_result("ok")]
        outcome = Outcome(exit_status=0)
        for item in lines:
            if isinstance(item, bytes):
                parsed = parse_line(item)
                if parsed is None:
                    outcome.noise_lines += 1
                    continue
                item = parsed
            if item.get("type") == "result" and self.hold is not None:
                waiter = asyncio.ensure_future(self.hold.wait())
                cancel = asyncio.ensure_future(self._cancel.wait())
                await asyncio.wait([waiter, cancel], return_when=asyncio.FIRST_COMPLETED)
                for f in (waiter, cancel):
                    f.cancel()
                if self._cancel.is_set():
                    outcome.cancelled = True
                    outcome.exit_status = 130
                    return outcome
            if item.get("type") == "result":
                outcome.result = item
            if isinstance(item.get("session_id"), str):
                outcome.session_id = item["session_id"]
            await on_line(item)
        return outcome


def _result(text: str, session_id: str = "scripted") -> dict[str, Any]:
    return {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "result": text,
        "session_id": session_id,
        "num_turns": 1,
        "duration_ms": 1,
        "total_cost_usd": 0.0,
        "usage": {},
    }
