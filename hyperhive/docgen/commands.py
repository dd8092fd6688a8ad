"""`docs/commands.md`: the command protocol, every verb's body generated from its struct."""

from __future__ import annotations

from collections.abc import Callable

from hyperhive import commands
from hyperhive.bus import rpc, subjects
from hyperhive.commands import verbs as v
from hyperhive.docgen.fields import GENERATED_NOTE, field_rows, first_line, struct_info, table

CALLERS = {v.AGENT: "any agent", v.MANAGER: "the manager", v.OPERATOR: "the operator"}

# What each verb may be refused for, beyond a body that does not fit its struct.
REFUSALS: dict[str, str] = {
    "send": "unknown recipient; a body over 64 KiB",
    "ask_operator": "a TTL outside 1 s .. 7 days; more than 32 options",
    "set_status": "more than 1024 characters",
    "self": "—",
    "request_spawn": "not the manager; a bad or reserved name; the agent exists; a spawn of it already pending",
    "request_apply_commit": "not the manager; an unknown agent; a bad commit ref",
    "start": "unknown agent; an action in flight; the manager starting itself",
    "stop": "unknown agent; an action in flight; the manager stopping itself",
    "restart": "unknown agent; an action in flight; the manager restarting itself",
    "agents": "—",
    "spawn": "a bad or reserved name; the agent exists; its port collides with a live agent's (named)",
    "rebuild": "unknown agent; an action in flight; a port collision",
    "pause": "unknown agent",
    "resume": "unknown agent",
    "destroy": "the manager; unknown agent (a kept one only with purge); an action in flight",
    "kick": "unknown agent",
    "model": "unknown agent; a model name that is not a plain word",
    "approvals": "—",
    "approve": "unknown approval; already settled (names how and by whom)",
    "deny": "unknown approval; already settled (names how and by whom)",
    "questions": "—",
    "answer": "unknown question; already answered, expired or cancelled",
    "cancel_question": "unknown question; already answered, expired or cancelled",
    "cancel_turn": "unknown agent; its harness does not answer",
    "ports": "—",
    "logs": "unknown agent (a kept one is allowed); more than 500 lines; the backend cannot read them",
}


def _verb_section(cls: type[commands.Command]) -> list[str]:
    verb = commands.verb_of(cls)
    who = ", ".join(CALLERS[c] for c in cls.callers)
    info = struct_info(cls)
    fields = [f for f in info.fields]
    out = [
        f"### `{verb}`",
        "",
        first_line(cls.__doc__, f"command {cls.__name__}"),
        "",
        f"Sent by {who}. Refused for: {REFUSALS.get(verb, '—')}.",
        "",
    ]
    if fields:
        out += [*table(("field", "type", "default", "constraints"), field_rows(fields)), ""]
    else:
        out += ["Body: `{}` (no fields).", ""]
    return out


def render_commands_md() -> str:
    missing = sorted(set(commands.VERBS) - set(REFUSALS))
    if missing:
        from hyperhive.errors import DocgenError

        raise DocgenError(f"verbs without their refusals in docgen: {', '.join(missing)}")
    example = subjects.command_subject("default", "_operator", "approve")
    lines = [
        GENERATED_NOTE,
        "",
        "# Command protocol",
        "",
        "Everything an operator or an agent asks of the hive is a command to c0re: NATS "
        "request/reply on `hive.<hive>.cmd.c0re.<caller>.<verb>`, where `<caller>` is the "
        f"agent's name or `_operator` (e.g. `{example}`). NATS permissions let each agent "
        "publish only under its own name, and c0re answers only requests whose reply inbox "
        "belongs to the caller the subject names.",
        "",
        "The body is one JSON object, the verb's fields below (the `verb` field may be left "
        "out; a field the verb does not know is refused). The reply is one JSON object:",
        "",
        "```json",
        '{"ok": true, "result": {...}}',
        '{"ok": false, "error": "<one line a person can act on>"}',
        "```",
        "",
        "A decision's events are published (and folded into c0re's state) before the reply. "
        "c0re handles one command at a time, serving callers round-robin from small queues "
        f"({64} waiting per caller; one more is refused at once), so a flood from one agent "
        "delays only that agent, and of two concurrent decisions on one question or approval "
        "exactly one wins: the other sees it and is refused.",
        "",
        f"A request may carry a `{rpc.REQUEST_ID}` header (at most {rpc.MAX_REQUEST_ID} "
        "characters). c0re carries out each id of a caller once and answers every request "
        f"with that id with the same reply, for {rpc.Replies.KEEP:.0f} s: a client whose "
        "request or reply was lost (a NATS node died under it) sends it again with the same "
        f"id. `bus.rpc.command` does so every {rpc.ATTEMPT:g} s, for up to "
        f"{rpc.COMMAND_BUDGET:g} s.",
        "",
        "## Verbs",
        "",
        *table(
            ("verb", "who", "what"),
            [
                [
                    f"[`{commands.verb_of(c)}`](#{commands.verb_of(c)})",
                    ", ".join(CALLERS[x] for x in c.callers),
                    first_line(c.__doc__, c.__name__),
                ]
                for c in commands.ALL_COMMANDS
            ],
        ),
        "",
    ]
    for cls in commands.ALL_COMMANDS:
        lines += _verb_section(cls)
    lines += [
        "## Results",
        "",
        '`agents` returns `{"agents": [...], "kept": [...]}`; each agent has `name`, '
        "`state` (`stopped`, `running`, `crashed`), `turn_state` (`stopped`, `idle`, "
        "`waiting`, `thinking`, `asking`, `paused`, `crashed`), `paused`, `backend`, `model`, "
        "`port`, `status_text`, and also `action` (a lifecycle action in flight), "
        "`needs_login`, `inbox` (messages waiting), `turn_id`, `last_turn`. `questions` "
        'returns `{"questions": [...]}` with `question_id`, `agent`, `question`, `options`, '
        "`multi`, `expires_at`, `status` (`open`, `answered`, `expired`, `cancelled`), "
        '`answer`, `by`. `approvals` returns `{"approvals": [...]}` with `approval_id`, '
        "`agent`, `approval_kind`, `description`, `status` (`pending`, `approved`, `denied`, "
        "`expired`, `failed`, `applied`), `note`, `payload`, `expires_at`, `by`. "
        "`hivectl ... -o json` prints these lists (and every other verb's result object).",
        "",
    ]
    return "\n".join(lines).rstrip("\n") + "\n"


GENERATED: dict[str, Callable[[], str]] = {"docs/commands.md": render_commands_md}
