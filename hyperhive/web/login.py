"""An agent's Claude login, from its page: an API key, or a Claude account sign-in.

Each agent has its own Claude credentials dir (`<state>/agents/<name>/claude/`,
bind-mounted to `/root/.claude` in its container, `CLAUDE_CONFIG_DIR` for a
process): sharing one would let one agent's token refresh invalidate the
others'. Both ways write there and nowhere else:

* **API key**: written into that dir's `settings.json` as
  `env.ANTHROPIC_API_KEY` (the file kept 0600, its other settings kept), which
  Claude Code applies to every run.
* **Claude account**: `claude auth login` runs with that dir as its config dir;
  it prints a sign-in URL, which the page shows, and reads the code the
  operator pastes back. One sign-in per agent at a time; an abandoned one is
  killed after `FLOW_TTL`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hyperhive.errors import HyperhiveError
from hyperhive.files import write_atomic
from hyperhive.statedir import StateDir

SETTINGS_FILE = "settings.json"
API_KEY_RE = re.compile(r"[A-Za-z0-9_\-.:]{8,512}")
CODE_RE = re.compile(r"[A-Za-z0-9_\-.#=+/]{4,512}")
URL_RE = re.compile(r"https://[^\s\"'<>]+")
SIGN_IN_HOSTS = ("claude.ai", "claude.com", "anthropic.com")
URL_TIMEOUT = 20.0  # for `claude auth login` to print its URL
CODE_TIMEOUT = 60.0  # for it to finish once the code is in
FLOW_TTL = 15 * 60.0
MAX_OUTPUT = 8192


class LoginRefused(HyperhiveError):
    """A login step the dashboard cannot take (bad input, no such flow, the CLI failed)."""

    http_status = 409


def claude_dir(state: StateDir, agent: str) -> Path:
    """The agent's Claude credentials dir, which must exist already (c0re makes it)."""
    path = state.agent_claude(agent)
    if not path.is_dir():
        raise LoginRefused(
            f"{agent} has no Claude dir on this host ({path.name} under its state): "
            "is it an agent of this hive's host?"
        )
    return state.inside(path)


def save_api_key(state: StateDir, agent: str, key: str) -> Path:
    """Put `key` in the agent's Claude settings (`env.ANTHROPIC_API_KEY`); the file's path."""
    key = key.strip()
    if not API_KEY_RE.fullmatch(key):
        raise LoginRefused("that is not an API key: 8-512 letters, digits, '-', '_', '.', ':'")
    path = claude_dir(state, agent) / SETTINGS_FILE
    settings: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        loaded = json.loads(path.read_text())
        if isinstance(loaded, dict):
            settings = loaded
    env = settings.get("env")
    settings["env"] = {**(env if isinstance(env, dict) else {}), "ANTHROPIC_API_KEY": key}
    write_atomic(path, json.dumps(settings, indent=2).encode() + b"\n", 0o600)
    return path


def sign_in_url(text: str) -> str | None:
    """The sign-in URL in what `claude auth login` printed, if it is Anthropic's."""
    for found in URL_RE.findall(text):
        found = str(found)
        host = urlsplit(found).hostname or ""
        if any(host == h or host.endswith("." + h) for h in SIGN_IN_HOSTS):
            return found
    return None


@dataclass
class Flow:
    """One `claude auth login` in progress."""

    agent: str
    proc: asyncio.subprocess.Process
    output: str = ""
    url: str | None = None
    state: str = "starting"  # starting | waiting_for_code | finishing | done | failed
    reader: asyncio.Task[None] | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def view(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "state": self.state,
            "url": self.url,
            "output": self.output[-2000:],
        }


class LoginFlows:
    """The Claude account sign-ins in progress, one per agent."""

    def __init__(self, state: StateDir, claude: str) -> None:
        self.state = state
        self.claude = claude
        self.flows: dict[str, Flow] = {}

    def status(self, agent: str) -> dict[str, Any]:
        flow = self.flows.get(agent)
        return flow.view() if flow else {"agent": agent, "state": "none", "url": None, "output": ""}

    async def start(self, agent: str) -> dict[str, Any]:
        """Start `claude auth login` for `agent`; returns once it printed its URL (or ended)."""
        config = claude_dir(self.state, agent)
        await self.cancel(agent)
        env = {
            **os.environ,
            "CLAUDE_CONFIG_DIR": str(config),
            "BROWSER": "true",  # nothing to open on a server: the page shows the URL
            "DISABLE_AUTOUPDATER": "1",
        }
        env.pop("DISPLAY", None)
        try:
            proc = await asyncio.create_subprocess_exec(
                self.claude,
                "auth",
                "login",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                cwd=str(config),
                start_new_session=True,
            )
        except OSError as exc:
            raise LoginRefused(
                f"cannot run {self.claude} ({exc.strerror or exc}): install Claude Code "
                "on this host, or set `claude` in hive.toml"
            ) from None
        flow = Flow(agent=agent, proc=proc)
        self.flows[agent] = flow
        flow.reader = asyncio.create_task(self._read(flow))
        try:
            async with asyncio.timeout(URL_TIMEOUT):
                while flow.url is None and flow.state not in ("done", "failed"):
                    flow.changed.clear()
                    await flow.changed.wait()
        except TimeoutError:
            await self.cancel(agent)
            raise LoginRefused(
                f"claude auth login printed no sign-in URL within {URL_TIMEOUT:g}s"
            ) from None
        return flow.view()

    async def code(self, agent: str, code: str) -> dict[str, Any]:
        """Hand the pasted code to the waiting `claude auth login`; returns how it ended."""
        flow = self.flows.get(agent)
        if flow is None or flow.state != "waiting_for_code":
            raise LoginRefused(f"no sign-in of {agent} is waiting for a code: start one")
        code = code.strip()
        if not CODE_RE.fullmatch(code):
            raise LoginRefused("that is not a sign-in code (paste exactly what the page showed)")
        assert flow.proc.stdin is not None
        flow.state = "finishing"
        try:
            flow.proc.stdin.write(code.encode() + b"\n")
            await flow.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # it ended already: its output says why
        try:
            async with asyncio.timeout(CODE_TIMEOUT):
                await flow.proc.wait()
                if flow.reader is not None:
                    await flow.reader
        except TimeoutError:
            await self.cancel(agent)
            raise LoginRefused(
                f"claude auth login did not finish within {CODE_TIMEOUT:g}s"
            ) from None
        return flow.view()

    async def _read(self, flow: Flow) -> None:
        assert flow.proc.stdout is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FLOW_TTL
        try:
            while True:
                async with asyncio.timeout_at(deadline):
                    chunk = await flow.proc.stdout.read(1024)
                if not chunk:
                    break
                flow.output = (flow.output + chunk.decode("utf-8", "replace"))[-MAX_OUTPUT:]
                if flow.url is None:
                    flow.url = sign_in_url(flow.output)
                    if flow.url is not None:
                        flow.state = "waiting_for_code"
                flow.changed.set()
            status = await flow.proc.wait()
            flow.state = "done" if status == 0 else "failed"
        except TimeoutError:
            _kill(flow.proc)
            flow.state = "failed"
            flow.output += "\n(abandoned: the sign-in took too long)"
        finally:
            flow.changed.set()

    async def cancel(self, agent: str) -> None:
        flow = self.flows.pop(agent, None)
        if flow is None:
            return
        _kill(flow.proc)
        with contextlib.suppress(Exception):
            await flow.proc.wait()
        if flow.reader is not None:
            flow.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await flow.reader

    async def aclose(self) -> None:
        for agent in list(self.flows):
            await self.cancel(agent)


def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
