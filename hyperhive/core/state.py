"""The hive's state: a pure fold over its events. `evolve(state, seq, event) -> state`.

Nothing here does I/O or reads a clock: the same events give the same state,
whether folded live by c0re, kept in sqlite tables by the projector, or
replayed from sequence 1. Deadlines are the events' own `expires_at`.

An agent's turn state is derived, never stored:

    stopped   its harness is not running          crashed   it exited without being asked
    paused    running, but takes no turns          thinking  a turn is running
    asking    a question of its own is open        waiting   in `recv`, nothing to do
    idle      none of the above
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import msgspec
from msgspec.structs import replace

from hyperhive import events as ev

Lifecycle = Literal["stopped", "running", "crashed"]
TurnState = Literal["stopped", "idle", "waiting", "thinking", "asking", "paused", "crashed"]
QuestionStatus = Literal["open", "answered", "expired", "cancelled"]
ApprovalStatus = Literal["pending", "approved", "denied", "expired", "failed", "applied"]


class LastTurn(msgspec.Struct, frozen=True, kw_only=True):
    """How an agent's last turn ended."""

    turn_id: str
    outcome: Literal["finished", "failed", "cancelled"]
    ended_at: datetime
    duration_ms: int | None = None
    cost_usd: float = 0.0
    error: str | None = None


class Agent(msgspec.Struct, frozen=True, kw_only=True):
    """One agent as c0re knows it."""

    name: str
    state: Lifecycle = "stopped"
    action: str | None = None  # a lifecycle action in flight (start, stop, rebuild, ...)
    backend: str | None = None
    container: str | None = None
    port: int | None = None
    model: str | None = None
    status_text: str = ""
    paused: bool = False
    turn_id: str | None = None  # the running turn
    turn_started_at: datetime | None = None
    waiting: bool = False  # in recv
    needs_login: bool = False
    last_turn: LastTurn | None = None
    spawned_at: datetime | None = None
    crashes: int = 0


class Kept(msgspec.Struct, frozen=True, kw_only=True):
    """A destroyed agent whose state and credentials were kept (revive or purge)."""

    name: str
    destroyed_at: datetime
    backend: str | None = None
    model: str | None = None


class Question(msgspec.Struct, frozen=True, kw_only=True):
    """An operator question and how it was resolved."""

    question_id: str
    agent: str
    question: str
    options: list[str] = []
    multi: bool = False
    ttl_seconds: int
    asked_at: datetime
    expires_at: datetime
    status: QuestionStatus = "open"
    answer: str | None = None
    by: str | None = None
    resolved_at: datetime | None = None


class Approval(msgspec.Struct, frozen=True, kw_only=True):
    """A request waiting for (or settled by) the operator."""

    approval_id: str
    agent: str | None  # who asked
    approval_kind: str
    description: str
    payload: dict[str, Any] = {}
    requested_at: datetime
    expires_at: datetime | None = None
    status: ApprovalStatus = "pending"
    by: str | None = None
    note: str | None = None
    decided_at: datetime | None = None


class HiveState(msgspec.Struct, frozen=True, kw_only=True):
    """Everything c0re decides on. `position` is the last stream sequence folded in."""

    hive: str
    position: int = 0
    agents: dict[str, Agent] = {}
    kept: dict[str, Kept] = {}
    questions: dict[str, Question] = {}
    approvals: dict[str, Approval] = {}
    inbox: dict[str, tuple[str, ...]] = {}  # message ids not yet delivered, per recipient


def empty(hive: str) -> HiveState:
    return HiveState(hive=hive)


# ---------------------------------------------------------------- views


def turn_state(state: HiveState, agent: Agent) -> TurnState:
    if agent.state == "crashed":
        return "crashed"
    if agent.state != "running":
        return "stopped"
    if agent.paused:
        return "paused"
    if agent.turn_id is not None:
        return "thinking"
    if any(q.agent == agent.name and q.status == "open" for q in state.questions.values()):
        return "asking"
    if agent.waiting:
        return "waiting"
    return "idle"


def open_questions(state: HiveState) -> list[Question]:
    return sorted(
        (q for q in state.questions.values() if q.status == "open"), key=lambda q: q.expires_at
    )


def pending_approvals(state: HiveState) -> list[Approval]:
    return sorted(
        (a for a in state.approvals.values() if a.status == "pending"),
        key=lambda a: a.requested_at,
    )


# ---------------------------------------------------------------- the fold


def _with_agent(hive: HiveState, name: str | None, /, **changes: Any) -> HiveState:
    if name is None or name not in hive.agents:
        return hive
    agents = dict(hive.agents)
    agents[name] = replace(agents[name], **changes)
    return replace(hive, agents=agents)


def _lifecycle_fields(e: ev.AgentLifecycle) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in ("backend", "container", "port"):
        value = getattr(e, field)
        if value is not None:
            out[field] = value
    return out


def _end_turn(
    state: HiveState, e: ev.Event, turn_id: str, outcome: str, **fields: Any
) -> HiveState:
    agent = state.agents.get(e.agent or "")
    if agent is None:
        return state
    last = LastTurn(turn_id=turn_id, outcome=outcome, ended_at=e.ts, **fields)  # type: ignore[arg-type]
    current = None if agent.turn_id == turn_id else agent.turn_id
    return _with_agent(
        state,
        agent.name,
        turn_id=current,
        turn_started_at=None if current is None else agent.turn_started_at,
        last_turn=last,
    )


def evolve(state: HiveState, seq: int, event: ev.AnyEvent) -> HiveState:
    """The state after `event` (stream sequence `seq`); events at or below the position are no-ops."""
    if seq <= state.position:
        return state
    if event.hive == state.hive:
        state = _apply(state, event)
    return replace(state, position=seq)


def _apply(state: HiveState, e: ev.AnyEvent) -> HiveState:
    match e:
        case ev.TurnStep():
            return state  # the live terminal: nothing to remember
        case ev.AgentSpawned(agent=str(name)):
            agents = dict(state.agents)
            kept = dict(state.kept)
            kept.pop(name, None)
            agents[name] = Agent(
                name=name,
                model=e.model,
                spawned_at=e.ts,
                **_lifecycle_fields(e),
            )
            return replace(state, agents=agents, kept=kept)
        case ev.AgentActionStarted():
            return _with_agent(state, e.agent, action=e.action)
        case ev.AgentActionFailed():
            return _with_agent(state, e.agent, action=None)
        case ev.AgentStarted():
            return _with_agent(state, e.agent, state="running", action=None, **_lifecycle_fields(e))
        case ev.AgentStopped():
            return _with_agent(
                state, e.agent, state="stopped", action=None, turn_id=None, waiting=False
            )
        case ev.AgentCrashed():
            agent = state.agents.get(e.agent or "")
            crashes = agent.crashes + 1 if agent else 0
            return _with_agent(
                state,
                e.agent,
                state="crashed",
                action=None,
                turn_id=None,
                waiting=False,
                crashes=crashes,
            )
        case ev.AgentRebuilt():
            return _with_agent(state, e.agent, action=None, **_lifecycle_fields(e))
        case ev.AgentPaused():
            return _with_agent(state, e.agent, paused=True)
        case ev.AgentResumed():
            return _with_agent(state, e.agent, paused=False)
        case ev.AgentDestroyed(agent=str(name)):
            agent = state.agents.get(name)
            agents = {k: v for k, v in state.agents.items() if k != name}
            kept = dict(state.kept)
            inbox = dict(state.inbox)
            if e.purged:
                kept.pop(name, None)
                inbox.pop(name, None)
            else:
                kept[name] = Kept(
                    name=name,
                    destroyed_at=e.ts,
                    backend=agent.backend if agent else e.backend,
                    model=agent.model if agent else None,
                )
            return replace(state, agents=agents, kept=kept, inbox=inbox)
        case ev.AgentStatusSet():
            return _with_agent(state, e.agent, status_text=e.status_text)
        case ev.AgentNeedsLogin():
            return _with_agent(state, e.agent, needs_login=True)
        case ev.ModelChanged():
            return _with_agent(state, e.agent, model=e.model)
        case ev.TurnStarted():
            return _with_agent(
                state, e.agent, turn_id=e.turn_id, turn_started_at=e.ts, waiting=False
            )
        case ev.TurnFinished():
            state = _end_turn(
                state, e, e.turn_id, "finished", duration_ms=e.duration_ms, cost_usd=e.cost_usd
            )
            return _with_agent(state, e.agent, needs_login=False)
        case ev.TurnFailed():
            return _end_turn(
                state, e, e.turn_id, "failed", duration_ms=e.duration_ms, error=e.error[:200]
            )
        case ev.TurnCancelled():
            return _end_turn(state, e, e.turn_id, "cancelled")
        case ev.MessageSent():
            inbox = dict(state.inbox)
            inbox[e.to] = (*inbox.get(e.to, ()), e.msg_id)
            return replace(state, inbox=inbox)
        case ev.RecvWaiting():
            return _with_agent(state, e.agent, waiting=True)
        case ev.RecvDelivered():
            state = _with_agent(state, e.agent, waiting=False)
            name = e.agent or ""
            if name in state.inbox:
                gone = set(e.message_ids)
                inbox = dict(state.inbox)
                inbox[name] = tuple(m for m in inbox[name] if m not in gone)
                state = replace(state, inbox=inbox)
            return state
        case ev.RecvTimedOut() | ev.RecvKicked():
            return _with_agent(state, e.agent, waiting=False)
        case ev.QuestionAsked(agent=str(name)):
            questions = dict(state.questions)
            questions[e.question_id] = Question(
                question_id=e.question_id,
                agent=name,
                question=e.question,
                options=list(e.options),
                multi=e.multi,
                ttl_seconds=e.ttl_seconds,
                asked_at=e.ts,
                expires_at=e.expires_at,
            )
            return replace(state, questions=questions)
        case ev.QuestionAnswered():
            return _resolve_question(state, e.question_id, "answered", e, answer=e.answer, by=e.by)
        case ev.QuestionExpired():
            return _resolve_question(state, e.question_id, "expired", e, answer="[expired]")
        case ev.QuestionCancelled():
            return _resolve_question(
                state, e.question_id, "cancelled", e, answer="[cancelled]", by=e.by
            )
        case ev.ApprovalRequested():
            approvals = dict(state.approvals)
            approvals[e.approval_id] = Approval(
                approval_id=e.approval_id,
                agent=e.agent,
                approval_kind=e.approval_kind,
                description=e.description,
                payload=dict(e.payload),
                requested_at=e.ts,
                expires_at=e.expires_at,
            )
            return replace(state, approvals=approvals)
        case ev.ApprovalApproved():
            return _settle(state, e, "approved", only_from=("pending",))
        case ev.ApprovalDenied():
            return _settle(state, e, "denied", only_from=("pending",))
        case ev.ApprovalExpired():
            return _settle(state, e, "expired", only_from=("pending",))
        case ev.ApprovalFailed():
            return _settle(state, e, "failed", only_from=("pending", "approved"))
        case ev.ApprovalApplied():
            return _settle(state, e, "applied", only_from=("approved",))
    return state


def _resolve_question(
    state: HiveState, question_id: str, status: QuestionStatus, e: ev.Event, **fields: Any
) -> HiveState:
    q = state.questions.get(question_id)
    if q is None or q.status != "open":
        return state  # resolved once: a second resolution changes nothing
    questions = dict(state.questions)
    questions[question_id] = replace(q, status=status, resolved_at=e.ts, **fields)
    return replace(state, questions=questions)


def _settle(
    state: HiveState, e: ev.ApprovalDecision, status: ApprovalStatus, only_from: tuple[str, ...]
) -> HiveState:
    a = state.approvals.get(e.approval_id)
    if a is None or a.status not in only_from:
        return state
    approvals = dict(state.approvals)
    approvals[e.approval_id] = replace(
        a, status=status, by=e.by or a.by, note=e.note or a.note, decided_at=e.ts
    )
    return replace(state, approvals=approvals)


def fold(hive: str, events: list[tuple[int, ev.AnyEvent]]) -> HiveState:
    """The state after `events` from nothing (a replay from sequence 1)."""
    state = empty(hive)
    for seq, event in events:
        state = evolve(state, seq, event)
    return state
