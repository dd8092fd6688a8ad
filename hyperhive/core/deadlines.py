"""What is due at `now`, and what an agent's exit means: pure, like `decide`.

Deadlines are the events' own `expires_at`, so a question or approval expires
on time across c0re restarts, and one that fell due while c0re was down
expires as soon as it is back.
"""

from __future__ import annotations

from datetime import datetime

from hyperhive import events as ev
from hyperhive.core.decide import MANAGER_NAME, Context, resolution_message, system_message
from hyperhive.core.state import HiveState
from hyperhive.events.envelope import MAX_EXCERPT


def next_deadline(state: HiveState) -> datetime | None:
    """The earliest moment something falls due, or None."""
    times = [q.expires_at for q in state.questions.values() if q.status == "open"]
    times += [
        a.expires_at
        for a in state.approvals.values()
        if a.status == "pending" and a.expires_at is not None
    ]
    return min(times) if times else None


def due(state: HiveState, ctx: Context) -> list[ev.Event]:
    """The expirations due at `ctx.now`, each with its system message to the asker."""
    out: list[ev.Event] = []
    for q in sorted(state.questions.values(), key=lambda q: q.expires_at):
        if q.status == "open" and q.expires_at <= ctx.now:
            out.append(
                ev.QuestionExpired(
                    hive=ctx.hive, agent=q.agent, source=ev.SOURCE_C0RE, question_id=q.question_id
                )
            )
            out.append(resolution_message(ctx, q, "[expired]"))
    for a in sorted(state.approvals.values(), key=lambda a: a.requested_at):
        if a.status == "pending" and a.expires_at is not None and a.expires_at <= ctx.now:
            out.append(
                ev.ApprovalExpired(
                    hive=ctx.hive,
                    agent=a.agent,
                    source=ev.SOURCE_C0RE,
                    approval_id=a.approval_id,
                    note="nobody decided before it expired",
                )
            )
            if a.agent is not None:
                body = f"your request {a.approval_id} ({a.description}) expired undecided"
                out.append(system_message(ctx, a.agent, body, "approval_resolved", a.approval_id))
    return out


def crashed(
    state: HiveState,
    ctx: Context,
    name: str,
    exit_status: int | None,
    signal: str | None,
    unit: str | None,
    last_lines: list[str],
    restart_planned: bool,
) -> list[ev.Event]:
    """An agent stopped without being asked: the crash, its open turn failed, the manager told.

    Its pending questions stay open (answerable): they belong to the agent, not
    to the process that died.
    """
    agent = state.agents.get(name)
    if agent is None or agent.state != "running" or agent.action is not None:
        return []
    how = f"signal {signal}" if signal else f"exit status {exit_status}"
    out: list[ev.Event] = [
        ev.AgentCrashed(
            hive=ctx.hive,
            agent=name,
            source=ev.SOURCE_C0RE,
            exit_status=exit_status,
            signal=signal,
            unit=unit,
            last_log_lines=[line[:MAX_EXCERPT] for line in last_lines[-20:]],
            restart_planned=restart_planned,
        )
    ]
    if agent.turn_id is not None:
        out.append(
            ev.TurnFailed(
                hive=ctx.hive,
                agent=name,
                source=ev.SOURCE_C0RE,
                turn_id=agent.turn_id,
                error=f"the agent's harness died ({how}) during the turn",
            )
        )
    if name != MANAGER_NAME and MANAGER_NAME in state.agents:
        tail = "\n".join(last_lines[-5:])
        body = f"agent {name} crashed ({how})" + (f"; last lines:\n{tail}" if tail else "")
        out.append(system_message(ctx, MANAGER_NAME, body, "container_crash", name))
    return out
