"""`hyperhive harness --agent NAME`: one agent's turn loop.

    wait on the inbox (recv, 180 s, re-armed forever)
      → read the agent's own row from c0re (`self`: model, paused) — every turn
      → build the wake prompt (sender, body, how many more wait, system messages)
      → run Claude Code once (resuming the agent's session)
      → turn.started, turn.step…, then turn.finished | turn.failed | turn.cancelled

It connects with the agent's own credentials and reaches c0re over the bus like
any client. `hive.<hive>.cmd.harness.<agent>.cancel_turn` interrupts a running
turn (SIGINT, then SIGKILL after a grace); `...kick` cuts a wait short. Nothing
a turn does — a missing claude, a missing login, a crash, garbage on stdout, a
refusal — stops the loop: each is a clear event, then the next message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from hyperhive import events as ev
from hyperhive.backoff import Backoff
from hyperhive.bus import subjects
from hyperhive.bus.connect import open_nats
from hyperhive.bus.inbox import Received, recv
from hyperhive.bus.publish import publish_budget, publish_event
from hyperhive.bus.rpc import command, trusted
from hyperhive.commands import verbs as v
from hyperhive.config import HiveConfig
from hyperhive.errors import HyperhiveError
from hyperhive.events.envelope import MAX_TEXT
from hyperhive.harness import prompts, turns
from hyperhive.harness.claude import CliRunner, Invocation, Outcome, Runner
from hyperhive.harness.transcripts import FILE as TRANSCRIPTS_FILE
from hyperhive.harness.transcripts import Transcripts
from hyperhive.ids import new_id
from hyperhive.names import SYSTEM, agent_role
from hyperhive.statedir import StateDir

log = logging.getLogger("hyperhive.harness")

RECV_WAIT = 180
PAUSED_CHECK = 5.0  # a paused agent looks at its row this often (or when kicked)
MCP_TOOL_TIMEOUT_MS = 200_000  # above recv's 180 s wait
SESSION_FILE = "claude-session.json"
BUILTIN_TOOLS = ("Read", "Write", "Edit", "MultiEdit", "Glob", "Grep", "Bash", "TodoWrite")
AGENT_TOOLS = ("send", "recv", "ask_operator", "set_status")
MANAGER_TOOLS = ("request_spawn", "start", "stop", "restart", "request_apply_commit")
SETTINGS = {"autoCompactEnabled": False, "autoMemoryEnabled": False, "includeCoAuthoredBy": False}


@dataclass(frozen=True)
class Home:
    """Where one agent keeps its things: notes, session, transcripts, claude dir."""

    root: Path  # /state in a container, <state>/agents/<name>/state for a process
    claude: Path | None  # the agent's claude dir, when the harness must point claude at it

    @classmethod
    def of(cls, cfg: HiveConfig, agent: str) -> Home:
        state = StateDir.at(cfg.state_dir)
        if state.agent(agent).is_dir():  # the hive's state dir: the process backend
            return cls(state.agent_state(agent), state.agent_claude(agent))
        return cls(state.root, None)  # the agent's own /state: a container


def hyperhive_command() -> str:
    beside = Path(sys.executable).parent / "hyperhive"
    return str(beside) if beside.exists() else "hyperhive"


class Harness:
    """One agent's loop on one connection."""

    def __init__(self, cfg: HiveConfig, nc: Client, agent: str, runner: Runner) -> None:
        self.cfg = cfg
        self.hive = cfg.hive
        self.nc = nc
        self.agent = agent
        self.runner = runner
        self.home = Home.of(cfg, agent)
        self.home.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.transcripts = Transcripts(self.home.root / TRANSCRIPTS_FILE)
        self.woken = asyncio.Event()
        self.turn_id: str | None = None
        self.cancelled_by: str | None = None
        self.kicked_by: str | None = None
        self.compact_by: str | None = None
        self.recv_task: asyncio.Task[Received | None] | None = None
        self.auth_failed = False

    # ------------------------------------------------------------ the bus

    async def emit(self, event: ev.Event) -> None:
        try:
            # Through a failover too: the same id is stored once (bus.publish).
            await publish_event(
                self.nc.jetstream(), event, retry_for=publish_budget(self.cfg.stream)
            )
        except (HyperhiveError, nats.errors.Error, TimeoutError) as exc:
            log.warning("harness %s: could not publish %s: %s", self.agent, event.kind, exc)

    async def me(self) -> dict[str, Any] | None:
        """The agent's own row from c0re (None while c0re can't be reached)."""
        try:
            return await command(self.nc, self.hive, self.agent, v.GetSelf(), timeout=10)
        except HyperhiveError as exc:
            log.warning("harness %s: c0re: %s", self.agent, exc)
            return None

    async def on_control(self, msg: Msg) -> None:
        call = trusted(msg)
        if call is None:
            return
        reply: dict[str, Any]
        if call.verb == "cancel_turn":
            running = self.turn_id is not None and self.runner.cancel()
            if running:
                self.cancelled_by = "operator"
            reply = {"ok": True, "result": {"cancelled": running, "turn_id": self.turn_id}}
        elif call.verb == "wake":  # resumed: look at the row again now, take no turn for it
            self.woken.set()
            reply = {"ok": True, "result": {"woken": True}}
        elif call.verb == "kick":
            self.kicked_by = "operator"
            self._interrupt_wait()
            reply = {"ok": True, "result": {"kicked": True}}
        elif call.verb in ("clear", "compact"):
            reply = self._session_verb(call.verb)
        else:
            reply = {"ok": False, "error": f"unknown harness verb {call.verb!r}"}
        with contextlib.suppress(nats.errors.Error):
            await msg.respond(msgspec.json.encode(reply))

    def _compact_asked(self) -> bool:
        return self.compact_by is not None

    def _interrupt_wait(self) -> None:
        self.woken.set()
        if self.recv_task is not None and not self.recv_task.done():
            self.recv_task.cancel()

    def _session_verb(self, verb: str) -> dict[str, Any]:
        """`clear` (the next turn starts a new session) or `compact` (a compaction turn now)."""
        if self.turn_id is not None or self.compact_by is not None:
            return {"ok": False, "error": f"{self.agent} is in a turn: cancel it first, or wait"}
        if self._session() is None:
            return {"ok": False, "error": f"{self.agent} has no session yet: nothing to {verb}"}
        if verb == "clear":
            self._forget_session()
            return {"ok": True, "result": {"cleared": True}}
        self.compact_by = "operator"
        self._interrupt_wait()
        return {"ok": True, "result": {"compacting": True}}

    # ------------------------------------------------------------ the loop

    async def run(self) -> None:
        pattern = subjects.harness_command_pattern(self.hive, self.agent)
        sub = await self.nc.subscribe(pattern, cb=self.on_control)
        backoff = Backoff(first=0.5, cap=10.0)
        try:
            while True:
                me = await self.me()
                if me is None:
                    await backoff.sleep()
                    continue
                backoff.reset()
                if self._compact_asked():  # asked for while paused, or just now
                    await self._compact_turn()
                    continue
                if me.get("paused"):
                    await self._wait_woken(PAUSED_CHECK)
                    continue
                got = await self._wait_for_message()
                if self._compact_asked():
                    await self._compact_turn()
                if got is None and self.kicked_by is None:
                    continue
                trigger = "kick" if got is None else "message"
                self.kicked_by = None
                await self._turn([got] if got is not None else [], trigger)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
            self.transcripts.close()

    async def _wait_woken(self, seconds: float) -> None:
        self.woken.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.woken.wait()

    async def _wait_for_message(self) -> Received | None:
        self.recv_task = asyncio.create_task(recv(self.nc, self.hive, self.agent, RECV_WAIT))
        try:
            return await self.recv_task
        except asyncio.CancelledError:
            if self.compact_by is not None and self.kicked_by is None:
                return None  # the wait was cut short for a compaction turn
            if self.kicked_by is None:
                raise
            await self.emit(
                ev.RecvKicked(
                    hive=self.hive, agent=self.agent, source=ev.SOURCE_HARNESS, by=self.kicked_by
                )
            )
            return None
        except HyperhiveError as exc:
            log.warning("harness %s: recv: %s", self.agent, exc)
            return None
        finally:
            self.recv_task = None

    # ------------------------------------------------------------ one turn

    async def _turn(self, received: list[Received], trigger: str, compact: bool = False) -> None:
        """One turn: the messages `received` woke it, or (`compact`) the operator's `/compact`."""
        me = await self.me() or {}
        while me.get("paused") and not compact:  # paused after the message came: it waits
            await self._wait_woken(PAUSED_CHECK)
            me = await self.me() or {}
        model = str(me.get("model") or self.cfg.default_model)
        unread = int(me.get("inbox", 0) or 0)
        others = [str(a) for a in me.get("agents", []) if isinstance(a, str)]
        manager = bool(me.get("manager"))
        turn_id = new_id()
        self.turn_id, self.cancelled_by = turn_id, None
        loop = asyncio.get_running_loop()
        started = loop.time()
        await self.emit(
            ev.TurnStarted(
                hive=self.hive,
                agent=self.agent,
                source=ev.SOURCE_HARNESS,
                turn_id=turn_id,
                model=model,
                trigger=trigger,  # type: ignore[arg-type]
            )
        )
        self.transcripts.begin(turn_id, trigger, model)
        try:
            system = prompts.system_prompt(
                self.agent, self.hive, others, manager, str(self.home.root / "notes.md")
            )
            if compact:
                outcome = await self._run_claude(turn_id, "/compact", system, model, manager)
            else:
                prompt = prompts.wake_prompt(_messages(received), unread, trigger)
                outcome = await self._run_claude(turn_id, prompt, system, model, manager)
                if outcome.result is not None and turns.too_long(outcome.result):
                    outcome = await self._compact_and_retry(turn_id, prompt, system, model, manager)
            await self._ended(turn_id, outcome, loop.time() - started)
        except Exception as exc:  # a harness bug must not end the loop: the turn failed
            log.exception("harness %s: turn %s failed", self.agent, turn_id)
            await self._failed(turn_id, f"the harness failed: {type(exc).__name__}: {exc}", 0)
        finally:
            self.turn_id = None

    async def _compact_turn(self) -> None:
        """The operator's `/compact`: one turn that compacts the session, reported as any turn."""
        by, self.compact_by = self.compact_by, None
        log.info("harness %s: compacting the session for %s", self.agent, by)
        await self._turn([], "operator", compact=True)

    async def _compact_and_retry(
        self, turn_id: str, prompt: str, system: str, model: str, manager: bool
    ) -> Outcome:
        """'Prompt is too long': compact the session once and retry; else start it afresh."""
        log.warning("harness %s: the session is too long; compacting it", self.agent)
        compacted = await self._run_claude(turn_id, "/compact", system, model, manager)
        if compacted.result is not None and not turns.is_error(compacted.result):
            retried = await self._run_claude(turn_id, prompt, system, model, manager)
            if retried.result is None or not turns.too_long(retried.result):
                return retried
        log.warning("harness %s: compaction did not help; starting a new session", self.agent)
        self._forget_session()
        note = "(Your earlier conversation grew too long and was reset: read your notes.)\n\n"
        return await self._run_claude(turn_id, note + prompt, system, model, manager)

    async def _run_claude(
        self, turn_id: str, prompt: str, system: str, model: str, manager: bool
    ) -> Outcome:
        async def on_line(line: dict[str, Any]) -> None:
            if turns.auth_failed(line):
                self.auth_failed = True
            self.transcripts.add(turn_id, line)
            for step in turns.step_events(self.hive, self.agent, turn_id, line):
                await self.emit(step)

        self.auth_failed = False
        outcome = await self.runner.run(self._invocation(prompt, system, model, manager), on_line)
        if outcome.session_id:
            self._save_session(outcome.session_id)
        return outcome

    async def _ended(self, turn_id: str, outcome: Outcome, seconds: float) -> None:
        ms = int(seconds * 1000)
        result = outcome.result
        if outcome.cancelled:
            self.transcripts.end(turn_id, "cancelled")
            await self.emit(
                ev.TurnCancelled(
                    hive=self.hive,
                    agent=self.agent,
                    source=ev.SOURCE_HARNESS,
                    turn_id=turn_id,
                    by=self.cancelled_by or "operator",
                )
            )
            return
        if outcome.error is not None:
            await self._failed(turn_id, outcome.error, ms)
            return
        if result is None:
            why = f"claude exited without a result (status {outcome.exit_status})"
            tail = outcome.stderr_tail.strip().splitlines()[-1:] if outcome.stderr_tail else []
            await self._failed(turn_id, why + (f": {tail[0]}" if tail else ""), ms)
            return
        text = turns.result_text(result)
        if turns.is_error(result):
            if turns.needs_login(result, self.auth_failed):
                await self.emit(
                    ev.AgentNeedsLogin(
                        hive=self.hive,
                        agent=self.agent,
                        source=ev.SOURCE_HARNESS,
                        reason=text[:1000],
                    )
                )
            await self._failed(turn_id, text or str(result.get("subtype", "error")), ms)
            return
        self.transcripts.end(turn_id, "finished")
        excerpt, _ = turns.cut(text, turns.RESULT_EXCERPT)
        await self.emit(
            ev.TurnFinished(
                hive=self.hive,
                agent=self.agent,
                source=ev.SOURCE_HARNESS,
                turn_id=turn_id,
                duration_ms=ms,
                usage=turns.usage_of(result),
                cost_usd=turns.number(result.get("total_cost_usd")),
                num_turns=int(turns.number(result.get("num_turns"))),
                result_excerpt=excerpt,
            )
        )

    async def _failed(self, turn_id: str, error: str, ms: int) -> None:
        self.transcripts.end(turn_id, "failed")
        await self.emit(
            ev.TurnFailed(
                hive=self.hive,
                agent=self.agent,
                source=ev.SOURCE_HARNESS,
                turn_id=turn_id,
                error=error[:MAX_TEXT],
                duration_ms=ms,
            )
        )

    # ------------------------------------------------------------ claude's command line

    def _invocation(self, prompt: str, system: str, model: str, manager: bool) -> Invocation:
        tools = AGENT_TOOLS + (MANAGER_TOOLS if manager else ())
        allowed = [*BUILTIN_TOOLS, *(f"mcp__hyperhive__{t}" for t in tools)]
        # Variadic options take the `=` form so they never swallow what follows;
        # the prompt itself goes in on stdin.
        argv = [
            "--print",
            "--verbose",
            "--output-format",
            "stream-json",
            "--model",
            model,
            f"--mcp-config={json.dumps(self._mcp_config())}",
            "--strict-mcp-config",
            f"--allowedTools={','.join(allowed)}",
            "--append-system-prompt",
            system,
            "--settings",
            json.dumps(SETTINGS),
        ]
        session = self._session()
        if session:
            argv += ["--resume", session]
        env = dict(os.environ)
        env.update(
            MCP_TOOL_TIMEOUT=str(MCP_TOOL_TIMEOUT_MS),
            DISABLE_AUTOUPDATER="1",
            DISABLE_AUTO_COMPACT="1",  # the harness compacts, once, on "prompt is too long"
            CLAUDE_CODE_DISABLE_AUTO_MEMORY="1",  # durable notes go to /state/notes.md
            HYPERHIVE_AGENT=self.agent,
        )
        env.setdefault("CLAUDE_CODE_MAX_RETRIES", "3")  # not minutes of retries per turn
        if self.home.claude is not None:
            env["CLAUDE_CONFIG_DIR"] = str(self.home.claude)
        return Invocation(argv=argv, prompt=prompt, env=env, cwd=str(self.home.root))

    def _mcp_config(self) -> dict[str, Any]:
        env = {
            k: val
            for k, val in os.environ.items()
            if k.startswith("HYPERHIVE_") and k != "HYPERHIVE_LOG_LEVEL"
        }
        env.update(HYPERHIVE_HIVE=self.hive, HYPERHIVE_STATE_DIR=self.cfg.state_dir)
        return {
            "mcpServers": {
                "hyperhive": {
                    "type": "stdio",
                    "command": hyperhive_command(),
                    "args": ["mcp", "--agent", self.agent],
                    "env": env,
                }
            }
        }

    def _session(self) -> str | None:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            data = json.loads((self.home.root / SESSION_FILE).read_text())
            sid = data["session_id"]
            return sid if isinstance(sid, str) and sid else None
        return None

    def _save_session(self, session_id: str) -> None:
        path = self.home.root / SESSION_FILE
        with contextlib.suppress(OSError):
            path.write_text(json.dumps({"session_id": session_id}))

    def _forget_session(self) -> None:
        with contextlib.suppress(OSError):
            (self.home.root / SESSION_FILE).unlink()


def _messages(received: list[Received]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for r in received:
        if r.message is None:
            out.append(
                {
                    "system": True,
                    "system_kind": "malformed",
                    "body": f"(unreadable message: {r.error})",
                }
            )
            continue
        m = r.message
        system = m.from_ == SYSTEM
        out.append(
            {
                "system": system,
                "system_kind": m.system_kind or "system",
                "sender": m.from_,
                "body": m.body,
            }
        )
    return out


async def run_harness(cfg: HiveConfig, agent: str, runner: Runner | None = None) -> None:
    """Run one agent's loop until cancelled."""
    runner = runner or CliRunner(cfg.claude)
    async with open_nats(cfg, agent_role(agent), f"hyperhive-harness-{agent}", wait=True) as nc:
        await Harness(cfg, nc, agent, runner).run()
