"""One turn's events, from claude's stream-json: steps as they happen, then how it ended.

A step's excerpt is what a person wants to see in the live terminal: assistant
text, a tool call rendered by tool (`Read /path`, `Bash $ cmd`, `send → bob: …`),
a tool result, each cut to `EXCERPT` characters (and marked when cut).
"""

from __future__ import annotations

import json
import re
from typing import Any

from hyperhive import events as ev

EXCERPT = 2000  # characters of one step shown live
RESULT_EXCERPT = 4000
LOGIN_HINTS = re.compile(
    r"invalid api key|please run /login|not logged in|authentication_error|\b401\b|oauth token",
    re.IGNORECASE,
)
TOO_LONG = re.compile(r"prompt is too long|context length|too many tokens", re.IGNORECASE)
MCP_PREFIX = "mcp__hyperhive__"


def cut(text: str, limit: int = EXCERPT) -> tuple[str, bool]:
    one = text if len(text) <= limit else text[: limit - 1] + "…"
    return one, len(text) > limit


def _arg(args: dict[str, Any], *keys: str) -> str:
    for k in keys:
        value = args.get(k)
        if isinstance(value, str) and value:
            return value
    return ""


def render_tool_call(name: str, args: Any) -> str:
    """How a tool call reads in the live terminal."""
    a = args if isinstance(args, dict) else {}
    if name == "Bash":
        return f"Bash $ {_arg(a, 'command')}"
    if name in ("Read", "Write", "Edit", "MultiEdit", "NotebookEdit"):
        return f"{name} {_arg(a, 'file_path', 'notebook_path', 'path')}"
    if name in ("Glob", "Grep"):
        where = _arg(a, "path")
        return f"{name} {_arg(a, 'pattern')}" + (f" in {where}" if where else "")
    if name.startswith(MCP_PREFIX):
        tool = name[len(MCP_PREFIX) :]
        if tool == "send":
            return f"send → {_arg(a, 'to')}: {_arg(a, 'body')}"
        if tool == "ask_operator":
            return f"ask_operator: {_arg(a, 'question')}"
        if tool == "recv":
            return f"recv (wait {a.get('wait_seconds', 180)}s)"
        if tool == "set_status":
            return f"set_status: {_arg(a, 'text')}"
        return f"{tool} {json.dumps(a, ensure_ascii=False)[:200]}"
    return f"{name} {json.dumps(a, ensure_ascii=False)[:200]}"


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
            elif isinstance(block, str):
                parts.append(block)
        return "\n".join(parts)
    return ""


def steps(line: dict[str, Any]) -> list[tuple[ev.StepKind, str | None, str]]:
    """The (step kind, tool, text) of one stream-json line; [] for lines that are not steps."""
    kind = line.get("type")
    message = line.get("message")
    if not isinstance(message, dict):
        return []
    content = message.get("content")
    if not isinstance(content, list):
        return []
    out: list[tuple[ev.StepKind, str | None, str]] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        btype = block.get("type")
        if kind == "assistant" and btype == "text":
            text = str(block.get("text", ""))
            if text.strip():
                out.append(("text", None, text))
        elif kind == "assistant" and btype == "tool_use":
            name = str(block.get("name", "?"))[:128]
            out.append(("tool_use", name, render_tool_call(name, block.get("input"))))
        elif kind == "user" and btype == "tool_result":
            text = _text_of(block.get("content"))
            prefix = "error: " if block.get("is_error") else ""
            out.append(("tool_result", None, prefix + text))
    return out


def step_events(hive: str, agent: str, turn_id: str, line: dict[str, Any]) -> list[ev.TurnStep]:
    events = []
    for step, tool, text in steps(line):
        excerpt, truncated = cut(text)
        events.append(
            ev.TurnStep(
                hive=hive,
                agent=agent,
                source=ev.SOURCE_HARNESS,
                turn_id=turn_id,
                step=step,
                tool=tool,
                excerpt=excerpt,
                truncated=truncated,
            )
        )
    return events


def usage_of(result: dict[str, Any]) -> ev.Usage:
    u = result.get("usage") if isinstance(result.get("usage"), dict) else {}
    assert isinstance(u, dict)

    def n(key: str) -> int:
        value = u.get(key, 0)
        return value if isinstance(value, int) and value >= 0 else 0

    return ev.Usage(
        input_tokens=n("input_tokens"),
        output_tokens=n("output_tokens"),
        cache_read_tokens=n("cache_read_input_tokens"),
        cache_creation_tokens=n("cache_creation_input_tokens"),
    )


def result_text(result: dict[str, Any]) -> str:
    """The result's text; for an error without one (an interrupt), its `errors`."""
    value = result.get("result")
    if isinstance(value, str) and value:
        return value
    errors = result.get("errors")
    if isinstance(errors, list):
        return "; ".join(str(e) for e in errors)[:RESULT_EXCERPT]
    return ""


def is_error(result: dict[str, Any]) -> bool:
    # An API error still says subtype "success": `is_error` is what tells.
    return bool(result.get("is_error")) or str(result.get("subtype", "success")) != "success"


def needs_login(result: dict[str, Any], auth_failed: bool = False) -> bool:
    """The CLI's credentials are missing, expired or refused (by fields, then by text)."""
    if result.get("api_error_status") in (401, 403) or auth_failed:
        return True
    return bool(LOGIN_HINTS.search(result_text(result)))


def too_long(result: dict[str, Any]) -> bool:
    """The session no longer fits the model's context: compact it and try again."""
    if result.get("terminal_reason") in ("prompt_too_long", "blocking_limit"):
        return True
    return bool(TOO_LONG.search(result_text(result)))


def auth_failed(line: dict[str, Any]) -> bool:
    """A line saying the API refused the credentials (the synthetic error message, a retry)."""
    return line.get("error") == "authentication_failed"


def number(value: Any, default: float = 0.0) -> float:
    return float(value) if isinstance(value, int | float) and value >= 0 else default
