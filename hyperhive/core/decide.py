"""The rules: `decide(state, caller, command, ctx) -> Decision`, pure.

A decision is the events to publish (before the reply), the reply's result,
and at most one effect for the service to carry out (start a container, apply
a commit, cancel a turn), whose outcome it publishes as further events. A
refusal is `CommandRefused` with one line a person can act on. Nothing here
reads a clock, a disk or the network: `ctx` brings the time and new ids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import msgspec

from hyperhive import events as ev
from hyperhive import names
from hyperhive.commands import AGENT, MANAGER, OPERATOR, Command, CommandRefused, verb
from hyperhive.commands import verbs as v
from hyperhive.core import ports
from hyperhive.core.state import Agent, Approval, HiveState, Question, turn_state
from hyperhive.errors import InvalidName
from hyperhive.events.envelope import MAX_TEXT

MANAGER_NAME = ports.MANAGER
OPERATOR_INBOX = "operator"  # the operator's inbox is `hive.<hive>.inbox.operator`
RESERVED = frozenset({OPERATOR_INBOX})
APPROVAL_TTL = 7 * 24 * 3600
KICK_TEXT = "you were (re)started; your notes are in /state/ (read /state/notes.md first)"


@dataclass(frozen=True)
class Context:
    """What a decision may know besides the state: the time, new ids, settings."""

    hive: str
    now: datetime
    new_id: Callable[[], str]
    default_model: str = "sonnet"
    backend: str = "process"


# ---------------------------------------------------------------- effects


@dataclass(frozen=True)
class Lifecycle:
    """Carry out a lifecycle action on an agent (the service calls the backend)."""

    action: str  # spawn, start, stop, restart, rebuild, destroy
    name: str
    purge: bool = False
    model: str | None = None
    approval_id: str | None = None  # carried out for this approval


@dataclass(frozen=True)
class ApplyCommit:
    """Copy agent.nix at `commit_ref` from the proposed repo into the applied one, rebuild."""

    approval_id: str
    agent: str
    commit_ref: str


@dataclass(frozen=True)
class CancelTurn:
    """Ask the agent's harness to cancel its running turn."""

    name: str
    turn_id: str | None


@dataclass(frozen=True)
class Wake:
    """Tell the agent's harness to look again now (it was resumed): best effort."""

    name: str


@dataclass(frozen=True)
class ReadLogs:
    """Read an agent's last log lines from the backend (a read: served off the command loop)."""

    name: str
    lines: int


Effect = Lifecycle | ApplyCommit | CancelTurn | Wake | ReadLogs


@dataclass(frozen=True)
class Decision:
    events: list[ev.Event] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    effect: Effect | None = None


# ---------------------------------------------------------------- views (results)


def agent_row(state: HiveState, a: Agent, default_model: str) -> dict[str, Any]:
    """One agent as `hivectl agents -o json` prints it (documented, stable)."""
    last = msgspec.to_builtins(a.last_turn) if a.last_turn else None
    return {
        "name": a.name,
        "state": a.state,
        "turn_state": turn_state(state, a),
        "paused": a.paused,
        "backend": a.backend,
        "model": a.model or default_model,
        "port": a.port if a.port is not None else ports.agent_port(a.name),
        "status_text": a.status_text,
        "action": a.action,
        "needs_login": a.needs_login,
        "inbox": len(state.inbox.get(a.name, ())),
        "turn_id": a.turn_id,
        "last_turn": last,
    }


def question_row(q: Question) -> dict[str, Any]:
    return {
        "question_id": q.question_id,
        "agent": q.agent,
        "question": q.question,
        "options": list(q.options),
        "multi": q.multi,
        "expires_at": q.expires_at,
        "status": q.status,
        "answer": q.answer,
        "by": q.by,
    }


def approval_row(a: Approval) -> dict[str, Any]:
    return {
        "approval_id": a.approval_id,
        "agent": a.agent,
        "approval_kind": a.approval_kind,
        "description": a.description,
        "status": a.status,
        "note": a.note,
        "payload": dict(a.payload),
        "expires_at": a.expires_at,
        "by": a.by,
    }


# ---------------------------------------------------------------- helpers


def refuse(text: str) -> CommandRefused:
    return CommandRefused(text)


def _name(raw: str) -> str:
    try:
        return names.check_agent(raw)
    except InvalidName as exc:
        raise refuse(str(exc)) from None


def _agent(state: HiveState, raw: str) -> Agent:
    name = _name(raw)
    agent = state.agents.get(name)
    if agent is None:
        hint = " (its state was kept: `spawn` revives it)" if name in state.kept else ""
        raise refuse(f"unknown agent {name!r}{hint}")
    return agent


def _source(caller: str) -> str:
    return ev.operator_source("operator") if caller == names.OPERATOR else ev.SOURCE_C0RE


def _by(caller: str) -> str:
    return "operator" if caller == names.OPERATOR else caller


def system_message(
    ctx: Context, to: str, body: str, kind: str, ref: str | None = None
) -> ev.MessageSent:
    """A message from `_system` into `to`'s inbox (an answer, a resolution, a kick, a crash)."""
    return ev.MessageSent(
        hive=ctx.hive,
        agent=None,
        source=ev.SOURCE_C0RE,
        msg_id=ctx.new_id(),
        from_=names.SYSTEM,
        to=to,
        body=body[:MAX_TEXT],
        system_kind=kind,
        ref=ref,
    )


def _check_caller(state: HiveState, caller: str, command: Command) -> None:
    allowed = type(command).callers
    if caller == names.OPERATOR:
        if OPERATOR not in allowed:
            raise refuse(f"{verb(command)} is an agent's verb, not the operator's")
        return
    if caller not in state.agents:
        raise refuse(f"unknown agent {caller!r}: only agents of this hive may send commands")
    if AGENT in allowed:
        return
    if MANAGER in allowed and caller == MANAGER_NAME:
        return
    who = "the manager's" if MANAGER in allowed else "the operator's"
    raise refuse(f"{verb(command)} is {who} verb; {caller} may not use it")


def _port_free(state: HiveState, name: str) -> None:
    other = ports.collision(name, state.agents)
    if other is not None:
        raise refuse(
            f"agent {name!r} would take web UI port {ports.agent_port(name)}, which "
            f"{other!r} has: rename one of them (ports come from the name)"
        )


# ---------------------------------------------------------------- decide


def decide(state: HiveState, caller: str, command: Command, ctx: Context) -> Decision:
    """What `command` from `caller` (an agent, or `_operator`) comes to; or `CommandRefused`."""
    _check_caller(state, caller, command)
    handler = _HANDLERS.get(type(command))
    if handler is None:  # every verb has one: a test checks
        raise refuse(f"{verb(command)} is not handled by c0re yet")
    return handler(state, caller, command, ctx)


def _send(state: HiveState, caller: str, c: v.Send, ctx: Context) -> Decision:
    to = _name(c.to)
    if to not in state.agents and to != OPERATOR_INBOX:
        raise refuse(f"unknown recipient {to!r}: send to an agent of this hive, or 'operator'")
    msg = ev.MessageSent(
        hive=ctx.hive,
        agent=None if caller == names.OPERATOR else caller,
        source=_source(caller),
        msg_id=ctx.new_id(),
        from_=_by(caller),
        to=to,
        body=c.body,
    )
    return Decision([msg], {"msg_id": msg.msg_id, "to": to})


def _ask(state: HiveState, caller: str, c: v.AskOperator, ctx: Context) -> Decision:
    qid = ctx.new_id()
    expires = ctx.now + timedelta(seconds=c.ttl_seconds)
    asked = ev.QuestionAsked(
        hive=ctx.hive,
        agent=caller,
        source=ev.SOURCE_C0RE,
        question_id=qid,
        question=c.question,
        options=list(c.options),
        multi=c.multi,
        ttl_seconds=c.ttl_seconds,
        expires_at=expires,
    )
    return Decision([asked], {"question_id": qid, "expires_at": expires})


def _status(state: HiveState, caller: str, c: v.SetStatus, ctx: Context) -> Decision:
    e = ev.AgentStatusSet(hive=ctx.hive, agent=caller, source=ev.SOURCE_C0RE, status_text=c.text)
    return Decision([e], {"status_text": c.text})


def _self(state: HiveState, caller: str, c: v.GetSelf, ctx: Context) -> Decision:
    agent = state.agents[caller]
    row = agent_row(state, agent, ctx.default_model)
    row["hive"] = ctx.hive
    row["agents"] = sorted(n for n in state.agents if n != caller)
    row["manager"] = caller == MANAGER_NAME
    return Decision([], row)


def _request_spawn(state: HiveState, caller: str, c: v.RequestSpawn, ctx: Context) -> Decision:
    name = _name(c.name)
    if name in RESERVED:
        raise refuse(f"{name!r} is reserved (the operator's inbox): pick another name")
    if name in state.agents:
        raise refuse(f"agent {name!r} already exists")
    for a in state.approvals.values():
        if a.status == "pending" and a.approval_kind == "spawn" and a.payload.get("name") == name:
            raise refuse(f"a spawn of {name!r} is already waiting for approval ({a.approval_id})")
    revive = " (revives its kept state)" if name in state.kept else ""
    return _request(ctx, caller, "spawn", f"spawn agent {name}{revive}", {"name": name})


def _request(
    ctx: Context, caller: str, kind: str, description: str, payload: dict[str, Any]
) -> Decision:
    aid = ctx.new_id()
    e = ev.ApprovalRequested(
        hive=ctx.hive,
        agent=caller,
        source=ev.SOURCE_C0RE,
        approval_id=aid,
        approval_kind=kind,
        description=description,
        payload=payload,
        ttl_seconds=APPROVAL_TTL,
        expires_at=ctx.now + timedelta(seconds=APPROVAL_TTL),
    )
    return Decision([e], {"approval_id": aid})


def _request_apply(
    state: HiveState, caller: str, c: v.RequestApplyCommit, ctx: Context
) -> Decision:
    agent = _agent(state, c.agent)
    payload = {"agent": agent.name, "commit_ref": c.commit_ref}
    return _request(
        ctx, caller, "apply_commit", f"apply {c.commit_ref} to {agent.name}'s config", payload
    )


def _lifecycle(action: str) -> Callable[[HiveState, str, Any, Context], Decision]:
    def handle(state: HiveState, caller: str, c: Any, ctx: Context) -> Decision:
        agent = _agent(state, c.name)
        if caller == MANAGER_NAME and agent.name == MANAGER_NAME:
            raise refuse(f"the manager may not {action} itself")
        if agent.action is not None:
            raise refuse(f"{agent.name} is busy ({agent.action} in flight): try again shortly")
        if action == "start" and agent.state == "running":
            return Decision([], {"name": agent.name, "state": "running", "changed": False})
        if action == "stop" and agent.state != "running":
            return Decision([], {"name": agent.name, "state": agent.state, "changed": False})
        if action == "rebuild":
            _port_free(state, agent.name)
        started = ev.AgentActionStarted(
            hive=ctx.hive,
            agent=agent.name,
            source=_source(caller),
            action=action,  # type: ignore[arg-type]
            by=_by(caller),
        )
        return Decision([started], {"name": agent.name}, Lifecycle(action, agent.name))

    return handle


def _list_agents(state: HiveState, caller: str, c: v.ListAgents, ctx: Context) -> Decision:
    rows = [agent_row(state, a, ctx.default_model) for _, a in sorted(state.agents.items())]
    kept = [msgspec.to_builtins(k) for _, k in sorted(state.kept.items())]
    return Decision([], {"agents": rows, "kept": kept})


def _spawn(state: HiveState, caller: str, c: v.Spawn, ctx: Context) -> Decision:
    name = _name(c.name)
    if name in RESERVED:
        raise refuse(f"{name!r} is reserved (the operator's inbox): pick another name")
    if name in state.agents:
        raise refuse(f"agent {name!r} already exists")
    _port_free(state, name)
    started = ev.AgentActionStarted(
        hive=ctx.hive, agent=name, source=_source(caller), action="spawn", by=_by(caller)
    )
    revive = name in state.kept
    return Decision(
        [started], {"name": name, "revived": revive}, Lifecycle("spawn", name, model=c.model)
    )


def _pause(state: HiveState, caller: str, c: v.Pause | v.Resume, ctx: Context) -> Decision:
    agent = _agent(state, c.name)
    pause = isinstance(c, v.Pause)
    if agent.paused == pause:
        return Decision([], {"name": agent.name, "paused": pause, "changed": False})
    cls = ev.AgentPaused if pause else ev.AgentResumed
    e = cls(hive=ctx.hive, agent=agent.name, source=_source(caller), backend=agent.backend)
    wake = None if pause else Wake(agent.name)
    return Decision([e], {"name": agent.name, "paused": pause, "changed": True}, wake)


def _destroy(state: HiveState, caller: str, c: v.Destroy, ctx: Context) -> Decision:
    name = _name(c.name)
    if name == MANAGER_NAME:
        raise refuse("the manager may not be destroyed (it is ensured at every start)")
    if name not in state.agents:
        if name in state.kept and c.purge:
            return Decision(
                [], {"name": name, "purged": True}, Lifecycle("destroy", name, purge=True)
            )
        hint = (
            " (already destroyed: add --purge to remove its kept state)"
            if name in state.kept
            else ""
        )
        raise refuse(f"unknown agent {name!r}{hint}")
    agent = state.agents[name]
    if agent.action is not None:
        raise refuse(f"{name} is busy ({agent.action} in flight): try again shortly")
    started = ev.AgentActionStarted(
        hive=ctx.hive, agent=name, source=_source(caller), action="destroy", by=_by(caller)
    )
    return Decision(
        [started], {"name": name, "purged": c.purge}, Lifecycle("destroy", name, purge=c.purge)
    )


def _kick(state: HiveState, caller: str, c: v.Kick, ctx: Context) -> Decision:
    agent = _agent(state, c.name)
    reason = c.reason or "the operator kicked you"
    kicked = ev.AgentKicked(
        hive=ctx.hive, agent=agent.name, source=_source(caller), by=_by(caller), reason=reason
    )
    msg = system_message(ctx, agent.name, f"kick: {reason}", "kick")
    return Decision([kicked, msg], {"name": agent.name, "msg_id": msg.msg_id})


def _model(state: HiveState, caller: str, c: v.SetModel, ctx: Context) -> Decision:
    agent = _agent(state, c.name)
    e = ev.ModelChanged(
        hive=ctx.hive, agent=agent.name, source=_source(caller), model=c.model, by=_by(caller)
    )
    return Decision([e], {"name": agent.name, "model": c.model})


def _list_approvals(state: HiveState, caller: str, c: v.ListApprovals, ctx: Context) -> Decision:
    rows = sorted(state.approvals.values(), key=lambda a: (a.status != "pending", a.requested_at))
    return Decision(
        [], {"approvals": [approval_row(a) for a in rows if c.all or a.status == "pending"]}
    )


def _approval(state: HiveState, approval_id: str) -> Approval:
    a = state.approvals.get(approval_id)
    if a is None:
        raise refuse(f"unknown approval {approval_id!r} (see `hivectl approvals`)")
    if a.status != "pending":
        who = f" by {a.by}" if a.by else ""
        raise refuse(f"approval {approval_id} was already {a.status}{who}")
    return a


def _decide_approval(
    state: HiveState, caller: str, c: v.Approve | v.Deny, ctx: Context
) -> Decision:
    a = _approval(state, c.approval_id)
    approve = isinstance(c, v.Approve)
    cls = ev.ApprovalApproved if approve else ev.ApprovalDenied
    decided = cls(
        hive=ctx.hive,
        agent=a.agent,
        source=_source(caller),
        approval_id=a.approval_id,
        by=_by(caller),
        note=c.note,
    )
    word = "approved" if approve else "denied"
    note = f" ({c.note})" if c.note else ""
    out: list[ev.Event] = [decided]
    if a.agent is not None:
        body = f"your request {a.approval_id} ({a.description}) was {word}{note}"
        out.append(system_message(ctx, a.agent, body, "approval_resolved", a.approval_id))
    effect: Effect | None = None
    if approve:
        effect = _carry_out(a)
    return Decision(out, {"approval_id": a.approval_id, "status": word}, effect)


def _carry_out(a: Approval) -> Effect | None:
    if a.approval_kind == "spawn":
        return Lifecycle("spawn", str(a.payload.get("name", "")), approval_id=a.approval_id)
    if a.approval_kind == "apply_commit":
        return ApplyCommit(a.approval_id, str(a.payload["agent"]), str(a.payload["commit_ref"]))
    if a.approval_kind == "rebuild":
        return Lifecycle("rebuild", str(a.payload.get("name", "")), approval_id=a.approval_id)
    return None


def _list_questions(state: HiveState, caller: str, c: v.ListQuestions, ctx: Context) -> Decision:
    rows = sorted(state.questions.values(), key=lambda q: (q.status != "open", q.expires_at))
    return Decision(
        [], {"questions": [question_row(q) for q in rows if c.all or q.status == "open"]}
    )


def _question(state: HiveState, question_id: str) -> Question:
    q = state.questions.get(question_id)
    if q is None:
        raise refuse(f"unknown question {question_id!r} (see `hivectl questions`)")
    if q.status != "open":
        who = f" by {q.by}" if q.by else ""
        raise refuse(f"question {question_id} was already {q.status}{who}")
    return q


def resolution_message(ctx: Context, q: Question, answer: str) -> ev.MessageSent:
    body = f"operator answer to your question {q.question_id}:\nQ: {q.question}\nA: {answer}"
    return system_message(ctx, q.agent, body, "operator_answered", q.question_id)


def _answer(state: HiveState, caller: str, c: v.Answer, ctx: Context) -> Decision:
    q = _question(state, c.question_id)
    answered = ev.QuestionAnswered(
        hive=ctx.hive,
        agent=q.agent,
        source=_source(caller),
        question_id=q.question_id,
        answer=c.answer,
        by=_by(caller),
    )
    msg = resolution_message(ctx, q, c.answer)
    return Decision([answered, msg], {"question_id": q.question_id, "status": "answered"})


def _cancel_question(state: HiveState, caller: str, c: v.CancelQuestion, ctx: Context) -> Decision:
    q = _question(state, c.question_id)
    cancelled = ev.QuestionCancelled(
        hive=ctx.hive,
        agent=q.agent,
        source=_source(caller),
        question_id=q.question_id,
        by=_by(caller),
        reason=c.reason,
    )
    msg = resolution_message(ctx, q, "[cancelled]")
    return Decision([cancelled, msg], {"question_id": q.question_id, "status": "cancelled"})


def _cancel_turn(state: HiveState, caller: str, c: v.CancelTurn, ctx: Context) -> Decision:
    agent = _agent(state, c.name)
    if agent.turn_id is None:
        return Decision([], {"name": agent.name, "turn_id": None, "cancelled": False})
    return Decision(
        [], {"name": agent.name, "turn_id": agent.turn_id}, CancelTurn(agent.name, agent.turn_id)
    )


def _ports(state: HiveState, caller: str, c: v.ListPorts, ctx: Context) -> Decision:
    rows = [{"name": n, "port": ports.agent_port(n)} for n in sorted(state.agents)]
    clashes = {str(p): ns for p, ns in ports.collisions(state.agents).items()}
    return Decision([], {"ports": rows, "collisions": clashes})


def _logs(state: HiveState, caller: str, c: v.Logs, ctx: Context) -> Decision:
    name = _name(c.name)
    if name not in state.agents and name not in state.kept:
        raise refuse(f"unknown agent {name!r}")
    return Decision([], {"name": name}, ReadLogs(name, c.lines))


_HANDLERS: dict[type[Command], Callable[[HiveState, str, Any, Context], Decision]] = {
    v.Send: _send,
    v.AskOperator: _ask,
    v.SetStatus: _status,
    v.GetSelf: _self,
    v.RequestSpawn: _request_spawn,
    v.RequestApplyCommit: _request_apply,
    v.Start: _lifecycle("start"),
    v.Stop: _lifecycle("stop"),
    v.Restart: _lifecycle("restart"),
    v.Rebuild: _lifecycle("rebuild"),
    v.ListAgents: _list_agents,
    v.Spawn: _spawn,
    v.Pause: _pause,
    v.Resume: _pause,
    v.Destroy: _destroy,
    v.Kick: _kick,
    v.SetModel: _model,
    v.ListApprovals: _list_approvals,
    v.Approve: _decide_approval,
    v.Deny: _decide_approval,
    v.ListQuestions: _list_questions,
    v.Answer: _answer,
    v.CancelQuestion: _cancel_question,
    v.CancelTurn: _cancel_turn,
    v.ListPorts: _ports,
    v.Logs: _logs,
}


def handled_commands() -> set[type[Command]]:
    return set(_HANDLERS)
