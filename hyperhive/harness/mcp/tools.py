"""The agent's tools: each one c0re command with the agent as caller (recv: its own inbox).

    tools = Tools(agent="alice", hive="default", client=link.client)
    tools.listed()                          # what this agent may see (the manager sees more)
    out = await tools.call("send", {"to": "bob", "body": "hi"})   # an Outcome, never raises

Arguments are validated here against the verb's own struct (the one c0re decodes
with), so a body of megabytes or a TTL of 10^12 is refused before it is sent;
names are c0re's to check. Every failure (a refusal, a bad argument, no bus)
comes back as an error `Outcome` whose text is one line, the reason; nothing a
caller sends can make `call` raise or return a traceback. Texts are bounded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import msgspec
import nats.errors
from nats.aio.client import Client

from hyperhive import events as ev
from hyperhive.bus import inbox
from hyperhive.bus.rpc import command
from hyperhive.commands import Command, InvalidCommand, verb_of
from hyperhive.commands import verbs as v
from hyperhive.core.ports import MANAGER as MANAGER_NAME
from hyperhive.errors import HyperhiveError, NotConnected
from hyperhive.names import SYSTEM, show

log = logging.getLogger("hyperhive.mcp")

MAX_RESULT_CHARS = 68 * 1024  # a whole 64 KiB message body, and the lines about it
MAX_ERROR_CHARS = 2000
MAX_RAW_EXCERPT = 1000
CONNECT_WAIT = 5.0  # how long a command waits for the bus connection, then says so
RECV_GRACE = 5.0  # recv returns at most this long after its wait (slow bus included)
DEFAULT_WAIT = ev.MAX_WAIT_SECONDS

GetClient = Callable[[float], Awaitable[Client]]
"""The bus connection, waiting at most that many seconds for it (`NotConnected` if not up)."""


@dataclass(frozen=True)
class Outcome:
    """What a tool call comes to: the text for the model, and whether it is an error."""

    text: str
    is_error: bool = False


def ok(text: str) -> Outcome:
    return Outcome(_bounded(text, MAX_RESULT_CHARS))


def error(reason: object) -> Outcome:
    """An error outcome: one line, bounded."""
    line = " ".join(str(reason).split()) or "failed"
    return Outcome(_bounded(line, MAX_ERROR_CHARS), is_error=True)


def _bounded(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    note = f" ... [cut: {len(text) - limit} more characters]"
    return text[: limit - len(note)] + note


# ---------------------------------------------------------------- the tools


Render = Callable[[dict[str, Any]], str]


@dataclass(frozen=True)
class ToolSpec:
    """One tool: its name, what the model reads about it, its arguments, what it sends."""

    name: str
    description: str
    input_schema: dict[str, Any]
    verb: type[Command] | None  # None: not a c0re command (recv)
    render: Render
    manager_only: bool = False


def arguments_schema(cls: type[Command], described: Mapping[str, str]) -> dict[str, Any]:
    """The JSON schema of a verb's fields (from its struct, so the bounds never drift)."""
    schema = msgspec.json.schema(cls)
    body = dict(schema["$defs"][cls.__name__])
    props = {k: dict(p) for k, p in body["properties"].items() if k != "verb"}
    assert set(props) == set(described), f"describe every field of {cls.__name__}"
    for name, text in described.items():
        props[name]["description"] = text
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    required = [r for r in body.get("required", []) if r != "verb"]
    if required:
        out["required"] = required
    return out


RECV_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "wait_seconds": {
            "type": "number",
            "minimum": 0,
            "maximum": ev.MAX_WAIT_SECONDS,
            "default": DEFAULT_WAIT,
            "description": (
                f"How long to wait for a message, 0..{ev.MAX_WAIT_SECONDS} seconds "
                "(0: only look; larger values are clamped)."
            ),
        }
    },
    "additionalProperties": False,
}


def _sent(r: dict[str, Any]) -> str:
    return f"sent to {r.get('to')} (msg_id {r.get('msg_id')})"


def _asked(r: dict[str, Any]) -> str:
    return (
        f"question {r.get('question_id')} asked (open until {r.get('expires_at')}). "
        "The operator's answer will arrive in your inbox later, as a system message about "
        f"{r.get('question_id')}: call recv to read it; keep working meanwhile."
    )


def _status_set(r: dict[str, Any]) -> str:
    return f"status set: {r.get('status_text', '')}"


def _requested(what: str) -> Render:
    def render(r: dict[str, Any]) -> str:
        return (
            f"{what} requested: approval {r.get('approval_id')}. The operator's decision "
            "will arrive in your inbox later, as a system message about that approval."
        )

    return render


def _lifecycle(action: str) -> Render:
    def render(r: dict[str, Any]) -> str:
        name = r.get("name")
        if r.get("changed") is False:
            return f"{name} is already {r.get('state')}: nothing to {action}"
        return f"{action} of {name} begun (c0re carries it out; watch for its result)"

    return render


def _not_a_command(r: dict[str, Any]) -> str:  # pragma: no cover - recv renders itself
    return ""


NAME_RULE = "1-31 of a-z, 0-9, '-', starting with a letter"
NAME_FIELD = f"the agent's name ({NAME_RULE})"

TOOLS: tuple[ToolSpec, ...] = (
    ToolSpec(
        "send",
        "Send a message to another agent of this hive, to `manager`, or to `operator` "
        "(the human who runs the hive). It lands in their inbox and they read it with their "
        "own recv. Returns at once with the message id; a reply, if any, arrives later in "
        "your inbox (read it with recv). Plain text, at most 64 KiB.",
        arguments_schema(
            v.Send,
            {
                "to": "who gets it: an agent's name, 'manager' or 'operator'",
                "body": "the message, plain text (at most 65536 characters)",
            },
        ),
        v.Send,
        _sent,
    ),
    ToolSpec(
        "recv",
        "Wait for the next message in your inbox and return it: who sent it and what it "
        "says. Returns within milliseconds when one arrives, or after `wait_seconds` "
        f"(default and at most {ev.MAX_WAIT_SECONDS}) saying no message came; call it again "
        "to keep waiting. Messages from `_system` come from the hive itself: the operator's "
        "answers to your questions, decisions on your requests, nudges to take a turn. Each "
        "message is handed to you once. Use it when you have nothing else to do, or are "
        "waiting for an answer; `wait_seconds: 0` only looks.",
        RECV_SCHEMA,
        None,
        _not_a_command,
    ),
    ToolSpec(
        "ask_operator",
        "Ask the human operator a question, for a decision you should not take alone or "
        "information only they have. Returns at once with the question id; the answer arrives "
        "later in your inbox as a system message (read it with recv), or a note that it "
        "expired after `ttl_seconds` or was cancelled. Do not wait idly: keep working, or recv.",
        arguments_schema(
            v.AskOperator,
            {
                "question": "the question, plain text (at most 16384 characters)",
                "options": "suggested answers, at most 32 (the operator may still answer freely)",
                "multi": "whether the operator may pick several of the options",
                "ttl_seconds": "how long the question stays open: 1..604800 seconds (7 days)",
            },
        ),
        v.AskOperator,
        _asked,
    ),
    ToolSpec(
        "set_status",
        "Set your one-line status, shown to the operator next to your name on the hive's "
        "dashboard: what you are doing or waiting for. Replaces the previous one; "
        "at most 1024 characters.",
        arguments_schema(v.SetStatus, {"text": "the status line (at most 1024 characters)"}),
        v.SetStatus,
        _status_set,
    ),
    ToolSpec(
        "request_spawn",
        "Ask the operator to approve creating a new agent `name`. Returns the approval id at "
        "once; the operator's decision arrives later in your inbox. Refused if the agent "
        "exists or a spawn of it is already waiting for approval.",
        arguments_schema(v.RequestSpawn, {"name": f"the new agent's name ({NAME_RULE})"}),
        v.RequestSpawn,
        _requested("spawn"),
        manager_only=True,
    ),
    ToolSpec(
        "start",
        "Start a stopped agent of this hive (not yourself). Returns once c0re has begun it, "
        "or says the agent is already running.",
        arguments_schema(v.Start, {"name": NAME_FIELD}),
        v.Start,
        _lifecycle("start"),
        manager_only=True,
    ),
    ToolSpec(
        "stop",
        "Stop a running agent of this hive (not yourself); its inbox keeps its messages "
        "for when it starts again. Returns once c0re has begun it, or says it is not running.",
        arguments_schema(v.Stop, {"name": NAME_FIELD}),
        v.Stop,
        _lifecycle("stop"),
        manager_only=True,
    ),
    ToolSpec(
        "restart",
        "Stop and start an agent of this hive (not yourself), e.g. when it is stuck. "
        "Returns once c0re has begun it.",
        arguments_schema(v.Restart, {"name": NAME_FIELD}),
        v.Restart,
        _lifecycle("restart"),
        manager_only=True,
    ),
    ToolSpec(
        "request_apply_commit",
        "Ask the operator to approve applying commit `commit_ref` of an agent's proposed "
        "config (its container is rebuilt from it once approved). Returns the approval id at "
        "once; the operator's decision arrives later in your inbox.",
        arguments_schema(
            v.RequestApplyCommit,
            {
                "agent": f"whose config: the agent's name ({NAME_RULE})",
                "commit_ref": "the git commit or ref to apply (letters, digits, '.', '_', '/', '-')",
            },
        ),
        v.RequestApplyCommit,
        _requested("apply commit"),
        manager_only=True,
    ),
)
TOOLS_BY_NAME = {t.name: t for t in TOOLS}


# ---------------------------------------------------------------- arguments


class RecvArgs(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    wait_seconds: float = DEFAULT_WAIT


def _given(arguments: Mapping[str, Any] | None) -> dict[str, Any]:
    """The arguments, with a `null` meaning "not given" (so a field's default applies)."""
    return {k: a for k, a in (arguments or {}).items() if a is not None}


def build_command(cls: type[Command], arguments: Mapping[str, Any] | None) -> Command:
    """The verb's struct from tool arguments, validated as c0re would; `InvalidCommand` if not."""
    try:
        return msgspec.convert(_given(arguments), cls)
    except msgspec.ValidationError as exc:
        raise InvalidCommand(f"{verb_of(cls)}: {exc}") from None


def recv_wait(arguments: Mapping[str, Any] | None) -> int:
    """recv's wait in whole seconds, clamped to 0..180; `InvalidCommand` if not a number."""
    try:
        args = msgspec.convert(_given(arguments), RecvArgs)
    except msgspec.ValidationError as exc:
        raise InvalidCommand(f"recv: {exc}") from None
    return ev.clamp_wait(args.wait_seconds)


# ---------------------------------------------------------------- rendering


def render_message(got: inbox.Received) -> str:
    """A message as the model reads it: who, which, then the body as sent."""
    msg = got.message
    if msg is None:
        raw = got.raw[:MAX_RAW_EXCERPT].decode("utf-8", errors="replace")
        return (
            "A malformed message was in your inbox; it was removed and cannot be read "
            f"properly: {_bounded(got.error or '?', MAX_RAW_EXCERPT)}. Its first bytes: {raw!r}"
        )
    when = msg.ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if msg.from_ == SYSTEM:
        about = f" about {msg.ref}" if msg.ref else ""
        head = (
            f"System message ({msg.system_kind or 'notice'}{about}), msg_id {msg.msg_id}, {when}:"
        )
    else:
        head = f"Message from {msg.from_}, msg_id {msg.msg_id}, {when}:"
    return f"{head}\n\n{msg.body}"


# ---------------------------------------------------------------- calling


@dataclass
class Tools:
    """The tools of one agent, calling c0re over `client` as that agent."""

    agent: str
    hive: str
    client: GetClient

    @property
    def is_manager(self) -> bool:
        return self.agent == MANAGER_NAME

    def listed(self) -> list[ToolSpec]:
        """The tools this agent sees: the manager's only for the manager."""
        return [t for t in TOOLS if self.is_manager or not t.manager_only]

    async def call(self, name: object, arguments: object) -> Outcome:
        """Run one tool; every failure is an error outcome with its one-line reason."""
        try:
            return await self._call(name, arguments)
        except HyperhiveError as exc:  # refused, invalid, not connected: the reason as it is
            return error(exc)
        except (nats.errors.Error, TimeoutError, OSError) as exc:
            return error(f"the hive's bus failed: {exc or type(exc).__name__}")
        except Exception:
            log.exception("mcp: tool %s failed", show(name))
            return error(f"internal error in hyperhive mcp running {show(name)} (logged)")

    async def _call(self, name: object, arguments: object) -> Outcome:
        spec = TOOLS_BY_NAME.get(name) if isinstance(name, str) else None
        if spec is None:
            names = ", ".join(t.name for t in self.listed())
            return error(f"unknown tool {show(name)}: the tools are {names}")
        if arguments is not None and not isinstance(arguments, Mapping):
            return error(f"{spec.name}: the arguments must be a JSON object")
        if spec.verb is None:
            return await self._recv(arguments)
        # A manager's tool from another agent goes to c0re too: its refusal is the answer.
        cmd = build_command(spec.verb, arguments)
        nc = await self.client(CONNECT_WAIT)
        result = await command(nc, self.hive, self.agent, cmd)
        return ok(spec.render(result))

    async def _recv(self, arguments: Mapping[str, Any] | None) -> Outcome:
        wait = recv_wait(arguments)
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            async with asyncio.timeout_at(start + wait + RECV_GRACE):
                # Its own deadline first, so a bus that is not up says why.
                nc = await self.client(min(CONNECT_WAIT, wait + RECV_GRACE - 1))
                # Time spent connecting comes off the wait, so the whole call stays in bounds.
                left = max(0, wait - int(loop.time() - start))
                got = await inbox.recv(nc, self.hive, self.agent, wait=left)
        except TimeoutError:
            raise NotConnected(
                f"recv: the hive's bus did not answer within {wait + RECV_GRACE:g}s"
            ) from None
        if got is None:
            return ok(f"no message within {wait} s")
        return ok(render_message(got))
