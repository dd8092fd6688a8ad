"""`hivectl`: the operator's verbs, each a c0re command as `_operator`.

Every verb takes the common options (before or after its name) and `-o text|json`.
JSON output is stable and documented in docs/commands.md: `agents`, `questions`
and `approvals` print a list of objects, every other verb c0re's result object.
A refusal is exit 1 with c0re's one-line reason on stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import click

from hyperhive import __version__
from hyperhive.bus.connect import open_nats
from hyperhive.bus.rpc import command
from hyperhive.cli import render
from hyperhive.cli.common import F, common_options, refusals, resolve, run
from hyperhive.cli.render import dumps, flush, write_line
from hyperhive.commands import Command
from hyperhive.commands import verbs as v
from hyperhive.config import HiveConfig
from hyperhive.names import OPERATOR, ROLE_OPERATOR

TIMEOUT = 30.0  # a spawn or rebuild waits for the backend


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hivectl")
@common_options
@click.pass_context
def main(ctx: click.Context, /, **kw: Any) -> None:
    """Operator verbs for a hive: agents, spawn, stop, approve, answer, ...

    Each verb is a command to the hive's c0re, sent as the operator; it answers
    with the result or a refusal saying why.
    """
    ctx.obj = {k: v for k, v in kw.items() if v is not None}


def _format(f: F) -> F:
    return click.option(
        "-o",
        "--output",
        "fmt",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        help="text, or JSON (stable field names, see docs/commands.md).",
    )(f)


async def _send(cfg: HiveConfig, cmd: Command) -> dict[str, Any]:
    async with open_nats(cfg, ROLE_OPERATOR, "hivectl") as nc:
        return await command(nc, cfg.hive, OPERATOR, cmd, timeout=TIMEOUT)


def _run(kw: dict[str, Any], make: Callable[[], Command]) -> dict[str, Any]:
    ctx = click.get_current_context()
    merged = {**(ctx.find_root().obj or {}), **{k: v for k, v in kw.items() if v is not None}}
    cfg = resolve(merged)
    return run(_send(cfg, make()))


def _emit(fmt: str, value: Any, text: Callable[[Any], list[str]]) -> None:
    out = sys.stdout
    if fmt == "json":
        write_line(out, dumps(value))
        return
    for line in text(value):
        write_line(out, line, flush=False)
    flush(out)


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    if not rows:
        return []
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*header).rstrip()] + [fmt.format(*r).rstrip() for r in rows]


def _short(value: Any, width: int = 60) -> str:
    return render.escape(render.shorten(str(value if value is not None else "-"), width))


def _result_lines(result: dict[str, Any]) -> list[str]:
    parts = [f"{k}={render.format_value(val)}" for k, val in result.items() if val is not None]
    return ["ok" + (": " + " ".join(parts) if parts else "")]


def _verb(name: str, help_text: str) -> Callable[[F], click.Command]:
    def decorate(f: F) -> click.Command:
        f.__doc__ = help_text
        return main.command(name)(common_options(_format(refusals(f))))

    return decorate


# ---------------------------------------------------------------- listings


@_verb("agents", "Every agent: state, turn state, model, port, status; kept state too.")
def agents(fmt: str, **kw: Any) -> None:
    result = _run(kw, v.ListAgents)

    def text(r: dict[str, Any]) -> list[str]:
        rows = [
            [
                a["name"],
                a["state"] + (f" ({a['action']})" if a.get("action") else ""),
                a["turn_state"] + (" · needs login" if a.get("needs_login") else ""),
                str(a["model"]),
                str(a["port"]),
                "yes" if a["paused"] else "",
                _short(a["status_text"] or ""),
            ]
            for a in r["agents"]
        ]
        out = _table(rows, ["NAME", "STATE", "TURN", "MODEL", "PORT", "PAUSED", "STATUS"])
        kept = [k["name"] for k in r.get("kept", [])]
        if kept:
            out.append(
                "kept state (destroyed; `spawn` revives, `destroy --purge` removes): "
                + ", ".join(kept)
            )
        return out or ["no agents"]

    if fmt == "json":
        _emit(fmt, result["agents"], text)
    else:
        _emit(fmt, result, text)


@_verb("questions", "Open operator questions (with --all, the resolved ones too).")
@click.option("--all", "show_all", is_flag=True, help="Also the answered, expired and cancelled.")
def questions(fmt: str, show_all: bool, **kw: Any) -> None:
    result = _run(kw, lambda: v.ListQuestions(all=show_all))

    def text(rows: list[dict[str, Any]]) -> list[str]:
        table = [
            [
                q["question_id"],
                q["agent"],
                q["status"],
                str(q["expires_at"])[:19],
                _short(q["question"])
                + (f" [{'/'.join(q['options'])}]" if q["options"] else "")
                + (" (multi)" if q["multi"] else ""),
            ]
            for q in rows
        ]
        return _table(table, ["ID", "AGENT", "STATUS", "EXPIRES", "QUESTION"]) or ["no questions"]

    _emit(fmt, result["questions"], text)


@_verb("approvals", "Pending approvals (with --all, the settled ones too).")
@click.option("--all", "show_all", is_flag=True, help="Also the approved, denied, expired, failed.")
def approvals(fmt: str, show_all: bool, **kw: Any) -> None:
    result = _run(kw, lambda: v.ListApprovals(all=show_all))

    def text(rows: list[dict[str, Any]]) -> list[str]:
        table = [
            [
                a["approval_id"],
                str(a["agent"] or "-"),
                a["approval_kind"],
                a["status"],
                _short(a["description"]) + (f" — {_short(a['note'], 40)}" if a["note"] else ""),
            ]
            for a in rows
        ]
        return _table(table, ["ID", "AGENT", "KIND", "STATUS", "DESCRIPTION"]) or ["no approvals"]

    _emit(fmt, result["approvals"], text)


@_verb("ports", "Every agent's web UI port, and any collisions.")
def ports_(fmt: str, **kw: Any) -> None:
    result = _run(kw, v.ListPorts)

    def text(r: dict[str, Any]) -> list[str]:
        out = _table([[p["name"], str(p["port"])] for p in r["ports"]], ["NAME", "PORT"])
        for port, who in r["collisions"].items():
            out.append(f"collision on {port}: {', '.join(who)} (rename one)")
        return out or ["no agents"]

    _emit(fmt, result, text)


# ---------------------------------------------------------------- lifecycle

NAME = click.argument("name")


def _lifecycle_verb(verb: str, cls: Callable[..., Command], what: str) -> None:
    @_verb(verb, what)
    @NAME
    def handler(fmt: str, name: str, **kw: Any) -> None:
        _emit(fmt, _run(kw, lambda: cls(name=name)), _result_lines)


for _verb_name, _cls, _what in (
    ("start", v.Start, "Start a stopped agent."),
    ("stop", v.Stop, "Stop a running agent."),
    ("restart", v.Restart, "Stop and start an agent (it is kicked on the way up)."),
    ("rebuild", v.Rebuild, "Rebuild an agent from its applied config, and restart it."),
    ("pause", v.Pause, "Pause an agent: no new turns; its messages wait (works when stopped)."),
    ("resume", v.Resume, "Resume a paused agent."),
    ("cancel-turn", v.CancelTurn, "Cancel an agent's running turn."),
):
    _lifecycle_verb(_verb_name, _cls, _what)


@_verb("spawn", "Create an agent now (a name whose state was kept is revived).")
@NAME
@click.option("--model", default=None, help="The agent's model (default: the hive's).")
def spawn(fmt: str, name: str, model: str | None, **kw: Any) -> None:
    _emit(fmt, _run(kw, lambda: v.Spawn(name=name, model=model)), _result_lines)


@_verb("destroy", "Remove an agent; its state and credentials are kept unless --purge.")
@NAME
@click.option("--purge", is_flag=True, help="Also remove its state and credentials, for good.")
def destroy(fmt: str, name: str, purge: bool, **kw: Any) -> None:
    _emit(fmt, _run(kw, lambda: v.Destroy(name=name, purge=purge)), _result_lines)


@_verb("kick", "Nudge an agent to take a turn (a system message in its inbox).")
@NAME
@click.option("--reason", default="", help="Why (shown to the agent).")
def kick(fmt: str, name: str, reason: str, **kw: Any) -> None:
    _emit(fmt, _run(kw, lambda: v.Kick(name=name, reason=reason)), _result_lines)


@_verb("model", "Change an agent's model; it applies from its next turn.")
@NAME
@click.argument("model")
def model(fmt: str, name: str, model: str, **kw: Any) -> None:
    _emit(fmt, _run(kw, lambda: v.SetModel(name=name, model=model)), _result_lines)


@_verb("logs", "An agent's last log lines (its harness.log, or its container's journal).")
@NAME
@click.option(
    "-n",
    "--lines",
    type=click.IntRange(1, v.MAX_LOG_LINES),
    default=200,
    show_default=True,
    help="How many lines.",
)
def logs(fmt: str, name: str, lines: int, **kw: Any) -> None:
    result = _run(kw, lambda: v.Logs(name=name, lines=lines))

    def text(r: dict[str, Any]) -> list[str]:
        return [render.escape(line) for line in r["lines"]] or [f"no log lines for {name}"]

    _emit(fmt, result, text)


# ---------------------------------------------------------------- messages, questions, approvals


@_verb("send", "Put a message in an agent's inbox, as the operator.")
@click.argument("to")
@click.argument("body")
def send(fmt: str, to: str, body: str, **kw: Any) -> None:
    _emit(fmt, _run(kw, lambda: v.Send(to=to, body=body)), _result_lines)


@_verb("answer", "Answer an open question (any text; options are advisory).")
@click.argument("question_id")
@click.argument("text")
def answer(fmt: str, question_id: str, text: str, **kw: Any) -> None:
    _emit(fmt, _run(kw, lambda: v.Answer(question_id=question_id, answer=text)), _result_lines)


@_verb("cancel-question", "Withdraw an open question; the asker is told [cancelled].")
@click.argument("question_id")
@click.option("--reason", default=None, help="Why.")
def cancel_question(fmt: str, question_id: str, reason: str | None, **kw: Any) -> None:
    cmd = lambda: v.CancelQuestion(question_id=question_id, reason=reason)  # noqa: E731
    _emit(fmt, _run(kw, cmd), _result_lines)


@_verb("approve", "Approve a pending request; it is carried out at once.")
@click.argument("approval_id")
@click.option("--note", default=None, help="A note for the requester and the audit log.")
def approve(fmt: str, approval_id: str, note: str | None, **kw: Any) -> None:
    cmd = lambda: v.Approve(approval_id=approval_id, note=note)  # noqa: E731
    _emit(fmt, _run(kw, cmd), _result_lines)


@_verb("deny", "Deny a pending request.")
@click.argument("approval_id")
@click.option("--note", default=None, help="A note for the requester and the audit log.")
def deny(fmt: str, approval_id: str, note: str | None, **kw: Any) -> None:
    cmd = lambda: v.Deny(approval_id=approval_id, note=note)  # noqa: E731
    _emit(fmt, _run(kw, cmd), _result_lines)
